import { performance } from "node:perf_hooks";
import { isKieError } from "../kie/errors.js";
import type { KieApi, TaskRecord } from "../kie/types.js";
import { BoundedSet } from "./bounded-set.js";
import type { WorkerMetrics } from "./registry.js";

type KieEndpoint = "submit" | "status" | "download_url" | "credit";

/** Body codes KIE documents; anything else is labelled "other", so a label never grows without bound. */
const KNOWN_API_CODES = new Set([200, 400, 401, 402, 404, 422, 429, 433, 455, 500, 501, 505]);
/** Task ids remembered for "observe each generation once". */
const SEEN_TASKS_CAPACITY = 10_000;

export interface KieOutcome {
  /** "ok", a KieError code, "aborted" (the caller's signal), or "error" (anything else). */
  code: string;
  /** The body's code as a label: "" when there was none, "other" when not a documented one. */
  apiCode: string;
}

/** How a call ended, as metric labels. */
export function kieOutcome(error: unknown, signal?: AbortSignal): KieOutcome {
  if (error === undefined) return { code: "ok", apiCode: "" };
  if (isKieError(error)) {
    const api = error.apiCode;
    return {
      code: error.code,
      apiCode: api === undefined ? "" : KNOWN_API_CODES.has(api) ? String(api) : "other",
    };
  }
  return { code: signal?.aborted ? "aborted" : "error", apiCode: "" };
}

/**
 * KieApi with metrics: every call counted by endpoint and outcome and timed; creates, 429s and
 * status results counted; the provider's generation time observed once per successful task.
 * Answers and errors pass through untouched.
 */
export function instrumentKie(
  kie: KieApi,
  metrics: WorkerMetrics,
  options: { seenCapacity?: number } = {},
): KieApi {
  const seen = new BoundedSet<string>(options.seenCapacity ?? SEEN_TASKS_CAPACITY);

  async function timed<T>(endpoint: KieEndpoint, signal: AbortSignal | undefined, call: () => Promise<T>) {
    const started = performance.now();
    let failure: unknown;
    try {
      return await call();
    } catch (error) {
      failure = error ?? new Error("rejected without a reason");
      throw error;
    } finally {
      metrics.apiDuration.observe({ endpoint }, (performance.now() - started) / 1000);
      const { code, apiCode } = kieOutcome(failure, signal);
      metrics.apiRequests.inc({ endpoint, code, api_code: apiCode });
      if (code === "rate_limited") metrics.rateLimited.inc({ endpoint });
    }
  }

  function observeTask(record: TaskRecord) {
    metrics.statusCalls.inc({ result: record.status });
    if (record.status !== "success" || record.createdAt === undefined || record.completedAt === undefined)
      return;
    const seconds = (record.completedAt - record.createdAt) / 1000;
    if (seconds >= 0 && seen.add(record.taskId)) metrics.generationSeconds.observe(seconds);
  }

  return {
    ...kie,
    async submit(request, signal) {
      const taskId = await timed("submit", signal, () => kie.submit(request, signal));
      metrics.submits.inc();
      return taskId;
    },
    async getTask(taskId, signal) {
      let record: TaskRecord;
      try {
        record = await timed("status", signal, () => kie.getTask(taskId, signal));
      } catch (error) {
        metrics.statusCalls.inc({ result: "error" });
        throw error;
      }
      observeTask(record);
      return record;
    },
    refreshDownloadUrl(url, signal) {
      return timed("download_url", signal, () => kie.refreshDownloadUrl(url, signal));
    },
    getCredits(signal) {
      return timed("credit", signal, () => kie.getCredits(signal));
    },
  };
}
