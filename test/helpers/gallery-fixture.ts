/**
 * A batch with real images in a real folder store, for the dashboard's gallery tests: archived
 * rows whose images the simulator drew (their sha256 in the ledger, as the archive stage records
 * them), one archived row whose file is not an image, one whose key points outside the batch's
 * prefix, failed rows with two messages, and rows still waiting or in progress.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { createFolderStore } from "../../src/archive/folder-store.js";
import type { ArchiveStore } from "../../src/archive/types.js";
import { retryInScope } from "../../src/dashboard/batch-routes.js";
import { type Dashboard, type DashboardOptions, startDashboard } from "../../src/dashboard/server.js";
import type { Ledger } from "../../src/ledger/index.js";
import { readFleetState } from "../../src/report/fleet-state.js";
import { encodeImage, imageFile } from "../../src/simulator/images.js";
import { moveRow, newRow, type OpsFixture, opsFixture } from "../integration/ops-helpers.js";

export const GALLERY = "gallery-batch";
export const ARCHIVED = ["fox", "lighthouse", "orchard", "harbour", "glacier", "market"];
export const BROKEN = "broken";
export const OUTSIDE = "outside";
export const TIMEOUT_ERROR = "generation failed: upstream timeout (code 500)";
export const POLICY_ERROR = "content policy: the prompt was refused";
export const TOKEN = "a-test-token-of-enough-length-0123";

export interface GalleryFixture {
  fx: OpsFixture;
  store: ArchiveStore;
  archiveDir: string;
  dashboard: Dashboard;
  /** Bytes stored for each archived row. */
  bytes: Map<string, Buffer>;
  close(): Promise<void>;
}

async function archiveRow(
  ledger: Ledger,
  store: ArchiveStore,
  id: string,
  body: Buffer,
  key = `${GALLERY}/${id}.png`,
): Promise<void> {
  await moveRow(ledger, GALLERY, id, "archiving", { spent: 8 });
  await store.put(key, Readable.from([body]), { contentType: "image/png" });
  const sha256 = createHash("sha256").update(body).digest("hex");
  const moved = await ledger.transition(GALLERY, id, {
    from: ["archiving"],
    to: "archived",
    set: {
      images: [
        { key, location: store.locationOf(key), bytes: body.length, sha256, contentType: "image/png" },
      ],
      archivedAt: Date.now(),
    },
  });
  if (!moved.ok) throw new Error(`could not archive ${id}`);
}

export async function startGalleryFixture(
  options: Partial<Pick<DashboardOptions, "authToken" | "allowActions">> & {
    /** The store the images go to and are served from. @defaultValue a folder store in a temporary folder */
    store?: ArchiveStore;
  } = {},
): Promise<GalleryFixture> {
  const { store: given, ...dashboardOptions } = options;
  const fx = opsFixture();
  const archiveDir = await mkdtemp(join(tmpdir(), "kie-gallery-"));
  const store = given ?? createFolderStore(archiveDir);
  const bytes = new Map<string, Buffer>();
  try {
    const ids = [...ARCHIVED, BROKEN, OUTSIDE, "fail-1", "fail-2", "fail-3", "wait-1", "busy-1"];
    await fx.ledger.addRows(
      GALLERY,
      ids.map((id, i) =>
        newRow(id, {
          prompt: `a ${id} at dawn, study ${i + 1}`,
          line: i + 2,
          metadata: { collection: i % 2 ? "odd" : "even" },
        }),
      ),
    );
    for (const [i, id] of ARCHIVED.entries()) {
      const image = imageFile(
        encodeImage({
          prompt: id,
          seed: i,
          index: 0,
          format: "png",
          size: i % 2 ? "portrait_4_3" : "landscape_4_3",
        }),
        "png",
      );
      const body = Buffer.concat([...image.chunks()]);
      bytes.set(id, body);
      await archiveRow(fx.ledger, store, id, body);
    }
    await archiveRow(fx.ledger, store, BROKEN, Buffer.from("this is not a PNG at all"));
    await archiveRow(fx.ledger, store, OUTSIDE, bytes.get("fox")!, `another-batch/${OUTSIDE}.png`);
    await moveRow(fx.ledger, GALLERY, "fail-1", "failed", { error: TIMEOUT_ERROR });
    await moveRow(fx.ledger, GALLERY, "fail-2", "failed", { error: TIMEOUT_ERROR });
    await moveRow(fx.ledger, GALLERY, "fail-3", "failed", { error: POLICY_ERROR, taskId: null });
    await moveRow(fx.ledger, GALLERY, "busy-1", "generating");

    const dashboard = await startDashboard({
      port: 0,
      queuePrefix: fx.prefix,
      ledger: fx.ledger,
      queues: fx.queues.queues,
      fleet: async () => readFleetState([]),
      ping: () => fx.redis.ping(),
      store,
      refreshSeconds: 0,
      retry: (batch, scope) =>
        retryInScope(
          {
            ledger: fx.ledger,
            queues: fx.queues,
            clock: { now: () => Date.now() },
            out: new PassThrough().resume(),
          },
          batch,
          scope,
        ),
      ...dashboardOptions,
    });
    return {
      fx,
      store,
      archiveDir,
      dashboard,
      bytes,
      async close() {
        await dashboard.close();
        await store.close();
        await rm(archiveDir, { recursive: true, force: true });
        await fx.close();
      },
    };
  } catch (error) {
    await fx.close();
    await rm(archiveDir, { recursive: true, force: true });
    throw error;
  }
}
