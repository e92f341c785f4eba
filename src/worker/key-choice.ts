import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { KeyLane, KeyRing } from "../fleet/key-ring.js";
import { PAUSE_RECHECK_MS } from "../fleet/policy.js";
import type { FleetPort, GateRead } from "../fleet/port.js";
import type { KieApi } from "../kie/types.js";
import { probePause, waitForOpenGate } from "./gate.js";

/** The key a create goes out with: its gate passed, its in-flight slot held for the job. */
export interface ChosenKey {
  /** "probe": this create is the usage-cap probe of the key's pause (see waitForOpenGate). */
  readonly passed: "open" | "probe";
  readonly kie: KieApi;
  readonly fleet: FleetPort;
  /**
   * The key's short hash, recorded with the task (one key too: the worker that polls it may have
   * other keys, or another first key). Absent only without a key ring (stage tests' fakes).
   */
  readonly id?: string;
  /**
   * Takes the create slot: a no-op when the choice already took it. May resolve with the gate as
   * read with the admission (the caller then needs no read of its own).
   */
  slot(signal: AbortSignal): Promise<GateRead | undefined>;
}

interface ChoiceDeps {
  kie: KieApi;
  fleet: FleetPort;
  keys?: KeyRing;
  clock: Pick<Clock, "sleep" | "now">;
}

/** Where the next choice starts, per process: submitters spread over keys that are all free. */
let rotation = 0;
/**
 * Per worker's keys and key id: when its create window frees a slot at the earliest, as last told
 * (the worker's clock). No slot frees sooner (admissions only fill a window), so a choice asks no
 * key before its time: waiting submitters cost Redis a try per freed slot, not one per key.
 */
const notBeforeOf = new WeakMap<KeyRing, Map<string, number>>();

/**
 * The key for one create, or undefined when the in-flight cap holds it (the caller waits and asks
 * again). One key: its gate is waited for, then its in-flight slot; the create slot is taken by
 * `slot()`. Several keys: the first key, from a rotating start, whose gate is open (or whose
 * usage-cap probe this caller won), that has an in-flight slot and a create slot free now; when
 * none has, it waits until the soonest slot frees, the backoff ends or a pause is checked again,
 * and looks at every gate again. A paused key is passed over: the others go on.
 */
export async function chooseKey(
  deps: ChoiceDeps,
  jobKey: string,
  signal: AbortSignal,
  log: Logger,
): Promise<ChosenKey | undefined> {
  const lanes = deps.keys?.lanes ?? [];
  if (lanes.length <= 1) {
    const fleet = lanes[0]?.fleet ?? deps.fleet;
    const kie = lanes[0]?.kie ?? deps.kie;
    const passed = await waitForOpenGate({ fleet, kie, clock: deps.clock }, signal, log);
    if (!(await fleet.tryAcquireInFlight(jobKey))) return undefined;
    const id = lanes[0] === undefined ? {} : { id: lanes[0].id };
    return { passed, kie, fleet, ...id, slot: (s) => fleet.createSlot(s) };
  }
  const ring = deps.keys!;
  const notBefore = notBeforeOf.get(ring) ?? new Map<string, number>();
  notBeforeOf.set(ring, notBefore);
  for (;;) {
    signal.throwIfAborted();
    const now = deps.clock.now();
    const start = rotation++ % lanes.length;
    const order = lanes.map((_, n) => lanes[(start + n) % lanes.length]!);
    const due = order.filter((lane) => (notBefore.get(lane.id) ?? 0) <= now);
    let waitMs = Math.min(
      PAUSE_RECHECK_MS,
      ...order.map((lane) => (notBefore.get(lane.id) ?? 0) - now).filter((ms) => ms > 0),
    );
    let capped = false;
    // One key after the other, each gate read only when its turn comes: while slots are free (a
    // burst at a fresh window) a create costs the round trips it costs with one key, no more, and
    // the time from its admission to KIE's arrival stays within the limiter's margin.
    for (const lane of due) {
      const { paused, backoffMs } = await lane.fleet.readGate();
      let passed: "open" | "probe" = "open";
      if (paused) {
        const probed = await probePause(lane, paused, signal, log.child({ key: lane.id }));
        if (probed === "held") continue;
        passed = probed === "probe" ? "probe" : "open";
      } else if (backoffMs > 0) {
        waitMs = Math.min(waitMs, backoffMs);
        continue;
      }
      if (!(await lane.fleet.tryAcquireInFlight(jobKey))) {
        if (passed !== "probe") {
          capped = true;
          continue;
        }
        // A won probe waits for its key's in-flight slot: given up, the probe would wait a whole period.
        await inFlightSlot(lane, jobKey, deps.clock, signal);
      }
      // A won probe waits for its key's slot: giving it up would delay the probe a whole period.
      if (passed === "probe") return chosen(lane, passed, (s) => lane.fleet.createSlot(s));
      // The gate read with the slot (one script) is as fresh as a read after it: no second read.
      // With the job's signal: the admission is this create's, moved if it leaves late (createLeaving).
      const { retryInMs, gate } = await lane.fleet.tryCreateSlot(signal);
      if (retryInMs === 0) return chosen(lane, passed, async () => gate);
      notBefore.set(lane.id, deps.clock.now() + retryInMs);
      await lane.fleet.releaseInFlight(jobKey);
      waitMs = Math.min(waitMs, retryInMs);
    }
    if (capped && waitMs >= PAUSE_RECHECK_MS) return undefined;
    await deps.clock.sleep(waitMs, signal);
  }
}

/** How often a won probe asks again for its key's in-flight slot. */
const PROBE_IN_FLIGHT_RECHECK_MS = 2_000;

async function inFlightSlot(
  lane: KeyLane,
  jobKey: string,
  clock: Pick<Clock, "sleep">,
  signal: AbortSignal,
): Promise<void> {
  do await clock.sleep(PROBE_IN_FLIGHT_RECHECK_MS, signal);
  while (!(await lane.fleet.tryAcquireInFlight(jobKey)));
}

function chosen(lane: KeyLane, passed: "open" | "probe", slot: ChosenKey["slot"]): ChosenKey {
  return { passed, kie: lane.kie, fleet: lane.fleet, id: lane.id, slot };
}
