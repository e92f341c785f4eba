/**
 * The one composition root: configuration in, wired parts out. Commands, the dashboard and the
 * demo call these; nothing else constructs clients, stores or workers.
 */
export {
  droppedConnection,
  openRedis,
  RedisUnavailableError,
  redisAnswers,
} from "./connections.js";
export { type Operator, openOperator } from "./operator.js";
export {
  buildLedger,
  connectProducer,
} from "./parts.js";
export { describeEndpoint, redisEndpoint } from "./redis-endpoint.js";
export { Releasers } from "./releasers.js";
export { type RunningWorker, startWorker, type WorkerRunOptions } from "./worker.js";
