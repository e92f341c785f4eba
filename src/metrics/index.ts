import type { ArchiveStore } from "../archive/types.js";
import type { KieApi } from "../kie/types.js";
import type { Ledger } from "../ledger/index.js";
import type { FleetPort } from "../worker/ports.js";
import { instrumentStore } from "./archive-store.js";
import { type FleetListener, fleetMetrics, observeFleet } from "./fleet.js";
import { instrumentKie } from "./kie.js";
import { instrumentLedger } from "./ledger.js";
import type { WorkerMetrics } from "./registry.js";

export {
  type AdminServer,
  startAdminServer,
} from "./admin-server.js";
export type { FleetListener } from "./fleet.js";
export { createWorkerMetrics, type WorkerMetrics } from "./registry.js";
export { collectFleetState, stateSourceOf } from "./state.js";

/** The ports the stages get, each wrapped to count what passes through it. */
export interface StagePorts {
  kie: KieApi;
  store: ArchiveStore;
  ledger: Ledger;
  fleet: FleetPort;
}

/**
 * Wraps every port of the stages with its metrics decorator; the stage logic is untouched.
 * `fleetListeners` (alerts) hear of the pauses and resumes the same decorator sees.
 */
export function instrumentPorts(
  ports: StagePorts,
  metrics: WorkerMetrics,
  fleetListeners: readonly FleetListener[] = [],
): StagePorts {
  return {
    kie: instrumentKie(ports.kie, metrics),
    store: instrumentStore(ports.store, metrics),
    ledger: instrumentLedger(ports.ledger, metrics),
    fleet: observeFleet(ports.fleet, [fleetMetrics(metrics), ...fleetListeners]),
  };
}
