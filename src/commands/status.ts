import { OpsError } from "../report/errors.js";
import { fleetLines } from "../report/fleet-state.js";
import { type BatchStatus, readAllStatus, readBatchStatus } from "../report/status.js";
import { allLines, batchLines, watchLine } from "../report/status-text.js";
import {
  EXIT_INTERRUPTED,
  followAll,
  followBatch,
  type LoopDeps,
  type LoopOptions,
  Redrawer,
  waitExitCode,
} from "../report/status-watch.js";
import type { Output } from "../report/types.js";

export interface StatusCommandDeps extends LoopDeps {
  out: Output;
}

export interface StatusCommandOptions extends LoopOptions {
  batch?: string;
  json?: boolean;
  /** Redraw every second until the batch finishes (or Ctrl-C). */
  watch?: boolean;
  /** Return when the batch has finished: exit 0 if no row failed, 3 if any did. */
  wait?: boolean;
}

/** `kie-batch status`: prints, watches or waits; resolves to the exit code. */
export async function runStatus(deps: StatusCommandDeps, options: StatusCommandOptions): Promise<number> {
  const { out } = deps;
  const print = (lines: readonly string[]) => out.write(`${lines.join("\n")}\n`);
  const printJson = (value: unknown) => out.write(`${JSON.stringify(value)}\n`);
  const text = { ...(deps.queuePrefix === undefined ? {} : { queuePrefix: deps.queuePrefix }) };

  if (options.wait && options.batch === undefined) {
    throw new OpsError("invalid_argument", "--wait needs a BATCH: `kie-batch status BATCH --wait`");
  }

  if (options.batch === undefined) {
    if (!options.watch) {
      const all = await readAllStatus(deps);
      if (options.json) printJson(all);
      else print(allLines(all, text));
      return 0;
    }
    const tty = out.isTTY === true && !options.json;
    const redraw = new Redrawer(out);
    const last = new Map<string, string>();
    await followAll(
      deps,
      (all) => {
        if (tty) {
          redraw.draw([...all.batches.map((s) => watchLine(s, true)), ...fleetLines(all, deps.queuePrefix)]);
          return;
        }
        for (const s of all.batches) {
          const line = options.json ? JSON.stringify(s) : watchLine(s, false);
          if (last.get(s.batch) === changeKey(s)) continue;
          last.set(s.batch, changeKey(s));
          out.write(options.json ? `${line}\n` : `${new Date(deps.clock.now()).toISOString()} ${line}\n`);
        }
      },
      options,
    );
    return 0;
  }

  const batch = options.batch;
  if (!options.watch && !options.wait) {
    const status = await readBatchStatus(deps, batch);
    if (options.json) printJson(status);
    else print(batchLines(status, text));
    return 0;
  }

  let onTick: (status: BatchStatus) => void = () => {};
  if (options.watch) {
    const tty = out.isTTY === true && !options.json;
    const redraw = new Redrawer(out);
    let lastKey = "";
    onTick = (status) => {
      if (tty) {
        redraw.draw(batchLines(status, text));
        return;
      }
      const key = changeKey(status);
      if (key === lastKey) return;
      lastKey = key;
      if (options.json) printJson(status);
      else out.write(`${new Date(deps.clock.now()).toISOString()} ${watchLine(status, false)}\n`);
    };
  }
  const { status, interrupted } = await followBatch(deps, batch, onTick, options);
  if (!options.watch) {
    if (options.json) printJson(status);
    else print(batchLines(status, text));
  } else if (out.isTTY !== true && !options.json && !interrupted) {
    // Plain output ends with the whole picture, as `status BATCH` prints it.
    print(batchLines(status, text));
  }
  if (!options.wait) return 0;
  return interrupted ? EXIT_INTERRUPTED : waitExitCode(status);
}

/** What a watcher compares to decide whether to print again (not the ever-moving ages). */
function changeKey(s: BatchStatus): string {
  return JSON.stringify([
    watchLine(s, false),
    s.creditsSpent,
    s.creditsReserved,
    s.waitingBudget,
    s.uncertain,
    s.paused?.reason ?? null,
    s.oldestUnarchived?.rowId ?? null,
    s.oldestUnarchived?.warning ?? false,
  ]);
}
