/**
 * Which fault, if any, a call meets: first the queue `injectFaults` filled for its endpoint, in
 * order, then a random transient fault at `faultRate`.
 */
import type { Random } from "./random.js";
import type { CallFault, SimEndpoint } from "./types.js";

/** Body messages for the codes a fault may carry, close to the real API's wording. */
export const CODE_MESSAGES: Record<number, string> = {
  400: "Bad request",
  401: "You do not have access permissions",
  402: "Credits insufficient",
  404: "Not found",
  422: "Validation error",
  429: "Rate limited: too many requests",
  433: "Usage limit of this key exceeded",
  455: "Service under maintenance",
  500: "Server error",
  501: "Generation failed",
  505: "Feature disabled",
};

export class FaultPlan {
  private readonly queues = new Map<SimEndpoint, CallFault[]>();

  constructor(
    private readonly random: Random,
    private readonly faultRate: number,
  ) {}

  inject(endpoint: SimEndpoint, faults: CallFault[]): void {
    const queue = this.queues.get(endpoint) ?? [];
    queue.push(...faults);
    this.queues.set(endpoint, queue);
  }

  next(endpoint: SimEndpoint): CallFault | undefined {
    const queued = this.queues.get(endpoint)?.shift();
    if (queued) return queued;
    if (!this.random.chance(this.faultRate)) return undefined;
    return this.randomFault(endpoint);
  }

  /** Only transient faults: each is one a client must survive by retrying. */
  private randomFault(endpoint: SimEndpoint): CallFault {
    const slow: CallFault = { kind: "delay", ms: this.random.int(500, 2000) };
    const choices: CallFault[] = [
      { kind: "http", status: 502 },
      { kind: "http", status: 503 },
      // A reset on a submit is as likely to come after the create as before: the maybe-created case.
      { kind: "reset", afterCreate: endpoint === "submit" && this.random.chance(0.5) },
      slow,
    ];
    // A JSON code on a file URL would be a different fault (a broken CDN), not a transient one.
    if (endpoint !== "image") choices.push({ kind: "code", code: 500 });
    return choices[this.random.int(0, choices.length - 1)]!;
  }
}
