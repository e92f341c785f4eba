import type { Queue } from "bullmq";
import { PAUSE_POLICY, type PauseState } from "../fleet/index.js";
import { type AccountPause, type FleetState, fleetLines, readFleetState } from "../report/fleet-state.js";
import type { Output } from "../report/types.js";
import { STAGES, type Stage } from "../worker/jobs.js";

/** One account's pause, with the operator's two moves (built by the app: `buildPauseControls`). */
export interface PauseControl extends AccountPause {
  pause(kind: "manual", reason: string): Promise<{ isNew: boolean; state: PauseState }>;
  /** Clears any pause, automatic ones (401, 402, 433) included; true when one was set. */
  resume(): Promise<boolean>;
}

export interface PauseDeps {
  accounts: readonly PauseControl[];
  out: Output;
  queuePrefix?: string;
}

export interface ResumeDeps extends PauseDeps {
  /** The stage queues: `resume` also lifts BullMQ's own pause of any (bull-board's pause button). */
  stageQueues?: Record<Stage, Pick<Queue, "isPaused" | "resume">>;
}

/**
 * `kie-batch pause`: a manual pause on every given account. It outranks every automatic pause, and
 * only `resume` lifts it. Workers keep polling and archiving: only new tasks stop.
 */
export async function pauseSubmissions(deps: PauseDeps, reason: string): Promise<FleetState> {
  for (const account of deps.accounts) {
    const { isNew, state } = await account.pause("manual", PAUSE_POLICY.manual.reason(reason));
    const since = new Date(state.since).toISOString();
    deps.out.write(
      isNew
        ? `account ${account.accountId}: ${PAUSE_POLICY.manual.started}\n`
        : `account ${account.accountId}: already paused since ${since} (${state.kind}): ${state.reason}\n`,
    );
  }
  const after = await readFleetState(deps.accounts);
  deps.out.write(`${fleetLines(after, deps.queuePrefix).join("\n")}\n`);
  deps.out.write(
    "Workers finish what is in hand and keep polling and archiving; no new task is created until `kie-batch resume`.\n",
  );
  return after;
}

/**
 * `kie-batch resume`: clears any pause of the given accounts, automatic ones included, and
 * BullMQ's pause of a stage queue (bull-board's button), under which that stage's jobs wait.
 */
export async function resumeSubmissions(deps: ResumeDeps): Promise<FleetState> {
  for (const stage of STAGES) {
    const queue = deps.stageQueues?.[stage];
    if (!queue || !(await queue.isPaused())) continue;
    await queue.resume();
    deps.out.write(`queue ${stage}: resumed (it was paused in BullMQ, e.g. bull-board's pause button)\n`);
  }
  for (const account of deps.accounts) {
    const before = await account.get();
    const cleared = await account.resume();
    deps.out.write(
      cleared && before
        ? `account ${account.accountId}: resumed (was paused since ${new Date(before.since).toISOString()} (${before.kind}): ${before.reason})\n`
        : `account ${account.accountId}: was not paused\n`,
    );
  }
  const after = await readFleetState(deps.accounts);
  deps.out.write(`${fleetLines(after, deps.queuePrefix).join("\n")}\n`);
  return after;
}
