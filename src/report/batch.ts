import { type BatchSummary, checkName, LedgerError } from "../ledger/index.js";
import { OpsError } from "./errors.js";
import type { OpsLedger } from "./types.js";

/** How many known batch names an "unknown batch" message lists. */
const NAMES_SHOWN = 5;

/**
 * The batch's summary, or an `unknown_batch` error that names the batches that do exist (the
 * usual mistake is a typo or another KIE_QUEUE_PREFIX).
 */
export async function requireBatch(
  ledger: Pick<OpsLedger, "getBatch" | "listBatches">,
  batch: string,
  queuePrefix?: string,
): Promise<BatchSummary> {
  try {
    checkName("batch", batch);
  } catch (error) {
    if (error instanceof LedgerError) throw new OpsError("invalid_argument", error.message);
    throw error;
  }
  const summary = await ledger.getBatch(batch);
  if (summary) return summary;
  const known = (await ledger.listBatches()).map((b) => b.batch);
  const where = queuePrefix === undefined ? "" : ` under queue prefix "${queuePrefix}"`;
  const hint =
    known.length === 0
      ? " (there are no batches: check KIE_QUEUE_PREFIX and REDIS_URL)"
      : ` (known: ${known.slice(0, NAMES_SHOWN).join(", ")}${known.length > NAMES_SHOWN ? ", ..." : ""})`;
  throw new OpsError("unknown_batch", `unknown batch "${batch}"${where}${hint}`);
}
