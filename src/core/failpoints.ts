/**
 * Failpoints: named places in the stages where a test makes the worker die, throw or stall, to
 * prove that a crash between any two writes leaves a state the next worker finishes (the
 * technique FoundationDB and TiKV test their storage with). Off in production: `failpoint(name)`
 * costs one Map lookup. Switched on by `KIE_FAILPOINTS=submit.after-create=exit@1,...`, parsed
 * once at start (the config schema calls `parseFailpoints`, the worker assembly `armFailpoints`).
 * The names are a closed list, so a typo in the variable is an error at start, not a point that
 * silently never fires.
 */
import { writeSync } from "node:fs";
import { pipeline, type Readable, Transform } from "node:stream";
import { CodedError, ValueError } from "./errors.js";
import type { Logger } from "./logger.js";
import { parseDuration } from "./values.js";

/**
 * Every failpoint, at each boundary where a crash changes what happens next. A new one goes here
 * first, then into its stage as one `await failpoint("...")` line, then into the crash suite.
 */
export const FAILPOINTS = [
  /** Reserved and gated, the create not sent yet. */
  "submit.before-create",
  /** The create answered (task id known and logged), the task id not recorded in the ledger. */
  "submit.after-create",
  /** The task id recorded (row `submitted`), the poll job not added. */
  "submit.after-record",
  /** Everything of the submit done but the poll job's add. */
  "submit.before-poll-add",
  /** Row moved to `archiving`, its archive job not added. */
  "poll.after-archiving",
  /** A failed generation's row moved back to `queued`, its resubmit job not added. */
  "poll.after-resubmit-queued",
  /** A row failed by the poll stage, the job not finished. */
  "poll.after-fail",
  /** The image's download answered (headers in), no byte stored. */
  "archive.during-download",
  /** The first bytes on their way into the store (a temporary file or upload open). */
  "archive.during-upload",
  /** Every image stored, the sidecar not written. */
  "archive.after-upload",
  /** The sidecar written, the ledger not told `archived`. */
  "archive.after-sidecar",
] as const;

export type FailpointName = (typeof FAILPOINTS)[number];

/** `exit`: process.exit(137) right there, like a SIGKILL; `throw`: a FailpointError; `sleep`: a stall. */
type FailpointAction = { kind: "exit" } | { kind: "throw" } | { kind: "sleep"; ms: number };

interface FailpointRule {
  action: FailpointAction;
  /** Fires on this hit of the point only (1: the first); on every hit when unset. */
  onHit?: number;
}

export type FailpointRules = ReadonlyMap<FailpointName, FailpointRule>;

/** What `exit` exits with: 128 + SIGKILL, as a killed process reports. */
export const FAILPOINT_EXIT_CODE = 137;

/** What the `throw` action throws. */
export class FailpointError extends CodedError<"failpoint"> {
  override readonly name = "FailpointError";

  constructor(readonly point: FailpointName) {
    super("failpoint", `failpoint ${point} (KIE_FAILPOINTS)`);
  }
}

const ENTRY_RE = /^([a-z.-]+)=(exit|throw|sleep\(([^)]*)\))(?:@(\d+))?$/;
const KNOWN: ReadonlySet<string> = new Set(FAILPOINTS);

/**
 * `name=action[@n][,name=action[@n]...]`, action one of `exit`, `throw`, `sleep(<duration>)`;
 * `@n` fires on the n-th hit only. Empty text arms nothing. Throws a ValueError naming the bad
 * entry, and for an unknown name the list of known ones.
 */
export function parseFailpoints(text: string): FailpointRules {
  const rules = new Map<FailpointName, FailpointRule>();
  for (const entry of text.split(",").map((part) => part.trim())) {
    if (entry === "") continue;
    const match = ENTRY_RE.exec(entry);
    if (!match) {
      throw invalid(
        `Invalid failpoint ${JSON.stringify(entry)}: expected name=exit|throw|sleep(<duration>)[@n]`,
      );
    }
    const [, name, actionText, sleepText, hitText] = match as unknown as [
      string,
      string,
      string,
      string?,
      string?,
    ];
    if (!KNOWN.has(name)) {
      throw invalid(`Unknown failpoint ${JSON.stringify(name)}: expected one of ${FAILPOINTS.join(", ")}`);
    }
    if (rules.has(name as FailpointName)) throw invalid(`Failpoint ${name} is given twice`);
    const onHit = hitText === undefined ? undefined : Number(hitText);
    if (onHit !== undefined && onHit < 1)
      throw invalid(`Invalid failpoint ${JSON.stringify(entry)}: @n counts from 1`);
    rules.set(name as FailpointName, {
      action:
        sleepText === undefined
          ? { kind: actionText as "exit" | "throw" }
          : { kind: "sleep", ms: sleepMs(entry, sleepText) },
      ...(onHit === undefined ? {} : { onHit }),
    });
  }
  return rules;
}

function sleepMs(entry: string, text: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw invalid(`Invalid failpoint ${JSON.stringify(entry)}: sleep takes a duration like sleep(500ms)`);
  }
}

function invalid(message: string): ValueError {
  return new ValueError("KIE_FAILPOINTS", message);
}

interface Armed {
  rule: FailpointRule;
  hits: number;
}

/** Empty unless a worker armed some: the only state of the module. */
let armed = new Map<FailpointName, Armed>();

/**
 * Arms `rules` for this process (replacing any armed before; undefined or empty disarms). A
 * worker that arms any says so at `warn`, so its log shows why it died.
 */
export function armFailpoints(rules: FailpointRules | undefined, log?: Logger): void {
  armed = new Map(
    [...(rules ?? new Map<FailpointName, FailpointRule>())].map(([name, rule]) => [name, { rule, hits: 0 }]),
  );
  if (armed.size > 0) {
    log?.warn(
      { failpoints: [...armed.keys()] },
      "failpoints armed (KIE_FAILPOINTS): this worker fails on purpose",
    );
  }
}

/**
 * The failpoint `name`: nothing (undefined) unless armed. Armed, `exit` ends the process
 * synchronously, `throw` throws a FailpointError, `sleep` returns a promise that resolves later.
 * Call sites write `await failpoint("...")`.
 */
export function failpoint(name: FailpointName): Promise<void> | undefined {
  const point = armed.get(name);
  return point === undefined ? undefined : fire(name, point);
}

function fire(name: FailpointName, point: Armed): Promise<void> | undefined {
  point.hits++;
  if (point.rule.onHit !== undefined && point.hits !== point.rule.onHit) return undefined;
  const { action } = point.rule;
  switch (action.kind) {
    case "exit":
      // Written synchronously: the line is on stderr before the process is gone. No cleanup runs,
      // no lock is released, no connection is closed: what a SIGKILL or a power cut leaves.
      writeSync(2, `failpoint ${name}: exit ${FAILPOINT_EXIT_CODE} (KIE_FAILPOINTS)\n`);
      process.exit(FAILPOINT_EXIT_CODE);
      break;
    case "throw":
      throw new FailpointError(name);
    case "sleep":
      // Real time on purpose: the stall is what the test wants another process to see.
      return new Promise((resolve) => setTimeout(resolve, action.ms));
  }
  return undefined;
}

/**
 * `stream` itself unless `name` is armed; armed, a pass-through that hits the failpoint when the
 * first chunk goes by (a point "during" a transfer: the consumer has started, nothing is done).
 */
export function failpointStream(name: FailpointName, stream: Readable): Readable {
  if (!armed.has(name)) return stream;
  let first = true;
  const pass = new Transform({
    transform(chunk, _encoding, callback) {
      if (!first) return callback(null, chunk);
      first = false;
      try {
        const stall = failpoint(name);
        if (stall === undefined) return callback(null, chunk);
        stall.then(() => callback(null, chunk), callback);
      } catch (error) {
        callback(error as Error);
      }
    },
  });
  // Destroying either end destroys the other, as the consumer expects of the stream it was given.
  return pipeline(stream, pass, () => {});
}
