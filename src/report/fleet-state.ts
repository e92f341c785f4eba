import type { PauseKind, PauseState } from "../fleet/index.js";

/** A pause as the commands show it. */
export interface PauseView {
  kind: PauseKind;
  reason: string;
  /** ISO 8601 (the Redis clock). */
  since: string;
  /** The account it belongs to (sha256 prefix of the key, never the key). */
  accountId: string;
}

export interface AccountState {
  accountId: string;
  paused: PauseView | null;
}

/** Submission state of the accounts a deployment uses. */
export interface FleetState {
  /** The longest-running pause among the accounts, or null when none is paused. */
  paused: PauseView | null;
  accounts: AccountState[];
}

/** One account's pause, as the fleet module keeps it. */
export interface AccountPause {
  readonly accountId: string;
  get(): Promise<PauseState | null>;
}

export function pauseView(accountId: string, state: PauseState | null): PauseView | null {
  if (!state) return null;
  return { kind: state.kind, reason: state.reason, since: new Date(state.since).toISOString(), accountId };
}

/** Reads every account's pause. */
export async function readFleetState(accounts: readonly AccountPause[]): Promise<FleetState> {
  const states = await Promise.all(
    accounts.map(async (a) => ({ accountId: a.accountId, paused: pauseView(a.accountId, await a.get()) })),
  );
  const paused = states
    .map((s) => s.paused)
    .filter((p): p is PauseView => p !== null)
    .sort((a, b) => a.since.localeCompare(b.since));
  return { paused: paused[0] ?? null, accounts: states };
}

/** Human lines for the fleet's state: one per account, or a note when no account is known. */
export function fleetLines(state: FleetState, queuePrefix?: string): string[] {
  if (state.accounts.length === 0) {
    const where = queuePrefix === undefined ? "" : ` for queue prefix "${queuePrefix}"`;
    return [
      `fleet: no KIE account known${where} (no worker has started yet; set KIE_API_KEY to see its pause state)`,
    ];
  }
  return state.accounts.map(({ accountId, paused }) =>
    paused
      ? `fleet: account ${accountId} PAUSED since ${paused.since} (${paused.kind}): ${paused.reason}`
      : `fleet: account ${accountId} running`,
  );
}
