import { expect } from "vitest";
import type { Ledger } from "../../src/ledger/index.js";

/**
 * One row through the ledger writes a worker makes, from queued to archived: a reservation of 6,
 * its task recorded, generating, archiving, the task settled at 6, archived with one image. The
 * frozen-page tests (ledger-freeze, cluster-freeze) build their batches with it.
 */
export async function archiveRow(
  ledger: Ledger,
  batch: string,
  id: string,
  at: number,
  task = `task_${id}_${"0".repeat(12)}`,
): Promise<void> {
  await ledger.reserveBudget(batch, id, 6);
  await ledger.transition(batch, id, { to: "submitted", addTaskId: task, taskKey: "35f176eacb0dc83c" });
  await ledger.transition(batch, id, { to: "generating", set: { generatingAt: at } });
  await ledger.transition(batch, id, { to: "archiving", set: { completedAt: at } });
  expect(await ledger.settleCredits(batch, id, 6)).toBe("settled");
  await ledger.transition(batch, id, {
    to: "archived",
    set: {
      images: [
        {
          key: `${batch}/${id}.png`,
          location: `/var/data/images/${batch}/${id}.png`,
          bytes: 26_000,
          sha256: id.padEnd(64, "c"),
          contentType: "image/png",
        },
      ],
      archivedAt: at,
      error: null,
    },
  });
}
