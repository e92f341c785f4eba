import type { Clock } from "../core/clock.js";
import {
  type AllStatus,
  type BatchStatus,
  readAllStatus,
  readBatchStatus,
  type StatusDeps,
} from "./status.js";
import type { Output } from "./types.js";

/** How often `--watch` and `--wait` read the ledger. */
const WATCH_INTERVAL_MS = 1_000;

/** Exit codes of `status --wait`. */
const EXIT_ALL_DONE = 0;
const EXIT_SOME_FAILED = 3;
/** Interrupted (Ctrl-C) before the batch finished, as shells report SIGINT. */
export const EXIT_INTERRUPTED = 130;

export interface LoopDeps extends StatusDeps {
  clock: Pick<Clock, "now" | "sleep">;
}

export interface LoopOptions {
  /** @defaultValue WATCH_INTERVAL_MS */
  intervalMs?: number;
  /** Ctrl-C: the loop ends without waiting for the batch. */
  signal?: AbortSignal;
}

/** 0 when no row failed, 3 when any did: the contract of `status --wait`. */
export function waitExitCode(status: Pick<BatchStatus, "failed">): number {
  return status.failed > 0 ? EXIT_SOME_FAILED : EXIT_ALL_DONE;
}

/** Sleeps on the injected clock; false when the signal ended the wait. */
async function pause(deps: LoopDeps, options: LoopOptions): Promise<boolean> {
  if (options.signal?.aborted) return false;
  try {
    await deps.clock.sleep(options.intervalMs ?? WATCH_INTERVAL_MS, options.signal);
    return true;
  } catch (error) {
    if (options.signal?.aborted) return false;
    throw error;
  }
}

/**
 * Reads the batch every interval, handing each snapshot to `onTick`, until every row is archived,
 * failed or cancelled. Returns the last snapshot and whether the loop was interrupted.
 */
export async function followBatch(
  deps: LoopDeps,
  batch: string,
  onTick: (status: BatchStatus) => void,
  options: LoopOptions = {},
): Promise<{ status: BatchStatus; interrupted: boolean }> {
  for (;;) {
    const status = await readBatchStatus(deps, batch);
    onTick(status);
    if (status.finished) return { status, interrupted: false };
    if (!(await pause(deps, options))) return { status, interrupted: true };
  }
}

/** Every batch, every interval, until interrupted. */
export async function followAll(
  deps: LoopDeps,
  onTick: (all: AllStatus) => void,
  options: LoopOptions = {},
): Promise<void> {
  for (;;) {
    onTick(await readAllStatus(deps));
    if (!(await pause(deps, options))) return;
  }
}

/**
 * `status BATCH --wait` as a function: resolves when the batch has finished, with 0 when no row
 * failed and 3 when any did (130 when interrupted).
 */
export async function waitForBatch(
  deps: LoopDeps,
  batch: string,
  options: LoopOptions = {},
): Promise<{ code: number; status: BatchStatus }> {
  const { status, interrupted } = await followBatch(deps, batch, () => {}, options);
  return { code: interrupted ? EXIT_INTERRUPTED : waitExitCode(status), status };
}

/**
 * Draws a block of lines in place on a terminal: each draw moves the cursor back over the previous
 * block and clears it. Lines are cut to the terminal's width, since a wrapped line would throw the
 * count off.
 */
export class Redrawer {
  private drawn = 0;

  constructor(private readonly out: Output) {}

  draw(lines: readonly string[]): void {
    const width = Math.max(20, (this.out.columns ?? 120) - 1);
    const fitted = lines.map((line) =>
      [...line].length > width ? `${[...line].slice(0, width - 1).join("")}…` : line,
    );
    // CSI n F: cursor to the start of the line n lines up; CSI J: clear to the end of the screen.
    const back = this.drawn > 0 ? `\x1b[${this.drawn}F\x1b[J` : "";
    this.out.write(`${back}${fitted.join("\n")}\n`);
    this.drawn = fitted.length;
  }
}
