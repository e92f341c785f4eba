import { PAUSE_POLICY, type PauseState } from "../fleet/index.js";
import { type AccountPause, type FleetState, fleetLines, readFleetState } from "../report/fleet-state.js";
import type { Output } from "../report/types.js";

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

/** `kie-batch resume`: clears any pause of the given accounts, automatic ones included. */
export async function resumeSubmissions(deps: PauseDeps): Promise<FleetState> {
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
