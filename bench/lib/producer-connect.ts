import type { Redis } from "ioredis";
import { createRedisBackend } from "../../src/bull/producer-backend.js";
import { QueueSet } from "../../src/bull/queues.js";
import { SUBMIT_WINDOW_DEFAULT } from "../../src/config/schema.js";
import { createLedger } from "../../src/ledger/index.js";
import type { ProducerBackend } from "../../src/producer/types.js";

/**
 * The producer's `connect` for a bench: the real Redis backend (ledger and queues) on `prefix`,
 * over a connection the bench opened; closing the backend quits that connection.
 */
export function producerConnect(connection: Redis, prefix: string): () => Promise<ProducerBackend> {
  return async () =>
    createRedisBackend({
      redis: connection,
      ledger: createLedger(connection, { prefix }),
      queuePrefix: prefix,
      // What `kie-batch enqueue` does with KIE_SUBMIT_WINDOW unset.
      submitWindow: SUBMIT_WINDOW_DEFAULT,
      queues: () => new QueueSet({ connection, queuePrefix: prefix }),
      onClose: async () => {
        await connection.quit();
      },
    });
}
