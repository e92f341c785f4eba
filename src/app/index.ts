/**
 * The one composition root: configuration in, wired parts out. Commands, the dashboard and the
 * demo call these; nothing else constructs clients, stores or workers.
 */
export {
  connectRedis,
  droppedConnection,
  openRedis,
  pingRedis,
  RedisUnavailableError,
  redisAnswers,
  waitForRedis,
} from "./connections.js";
export { CLOSE_DEADLINE_MS, type Operator, openOperator } from "./operator.js";
export {
  buildArchivePause,
  buildFleet,
  buildKie,
  buildLedger,
  buildPauseControls,
  buildQueues,
  buildStore,
  connectProducer,
  downloadHosts,
} from "./parts.js";
export { type ReleaseFailure, Releasers } from "./releasers.js";
export { type RunningWorker, startWorker, type WorkerRunOptions, workerSettings } from "./worker.js";
