/**
 * A store outage is the fleet's, not the row's (issue 9): an S3 store that refuses the credential
 * or the permission, a missing bucket, a folder that is not writable, or a full disk (a small
 * tmpfs) or full MinIO pauses archiving
 * fleet-wide, with the reason in `status`, the dashboard's data and an alert. Rows wait in
 * `archiving` (none fails), submissions go on, one worker probes the store, and archiving
 * resumes by itself once the store answers; result URLs that expired meanwhile are refreshed.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { type Operator, openOperator } from "../../src/app/index.js";
import type { BatchSummary } from "../../src/ledger/index.js";
import { readAllStatus } from "../../src/report/status.js";
import { allLines } from "../../src/report/status-text.js";
import { type AlertReceiver, startAlertReceiver } from "../helpers/alert-receiver.js";
import { type Refusal, type RefusingS3, startRefusingS3 } from "../helpers/refusing-s3.js";
import { startS3Proxy } from "../helpers/s3-proxy.js";
import { s3rverContext } from "../helpers/s3rver-context.js";
import { startHarness, until, type WorkerHarness } from "../helpers/worker-harness.js";

const ROWS = [{ id: "a" }, { id: "b" }, { id: "c" }];
/** Probe the store this often (the default is a minute). */
const PROBE_MS = 300;

const aws = s3rverContext();

/** Mounts a tmpfs of `size` at `dir` (root only); undefined when this machine refuses. */
function mountTmpfs(dir: string, size: string): (() => Promise<void>) | undefined {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "ignore" });
  } catch {
    return undefined;
  }
  // Lazy: a file thread may still hold the folder open when the test ends.
  return async () => {
    execFileSync("umount", ["-l", dir], { stdio: "ignore" });
  };
}

/**
 * Whether this machine lets the tests mount a tmpfs (root: CI here). Without it the full-disk test
 * below cannot make a disk full; the same pause path is covered by the full MinIO (507) case and
 * the unit tests of ENOSPC and EDQUOT.
 */
const CAN_MOUNT = await (async () => {
  const dir = await mkdtemp(join(tmpdir(), "kie-mount-probe-"));
  const unmount = mountTmpfs(dir, "4k");
  await unmount?.();
  await rm(dir, { recursive: true, force: true });
  return unmount !== undefined;
})();

describe("worker: the archive store refuses, then is fixed", () => {
  let h: WorkerHarness | undefined;
  let op: Operator | undefined;
  let receiver: AlertReceiver | undefined;
  let proxy: RefusingS3 | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await op?.close();
    await h?.close();
    await receiver?.close();
    await proxy?.close();
    for (const cleanup of cleanups.splice(0)) await cleanup();
    h = op = receiver = proxy = undefined;
  });

  /** A harness whose worker archives with `env`, probes every PROBE_MS, and alerts to a receiver. */
  async function start(env: Record<string, string>) {
    receiver = await startAlertReceiver();
    h = await startHarness({ env: { ...env, KIE_ALERT_WEBHOOK_URL: receiver.url } });
    await h.worker({ settings: { storeProbeMs: PROBE_MS }, alerts: { pauseWatchMs: 100 } });
    op = await openOperator(h.config());
    return { h, op, receiver };
  }

  /** Every row waiting in `archiving`, archiving paused with `reason`, in status and an alert. */
  async function expectOutageShown(batch: string, reason: RegExp) {
    const summary = await until("every row waits in archiving", async () => {
      const s = await h!.pipeline.ledger.getBatch(batch);
      return s?.archiving === ROWS.length ? s : false;
    });
    expect(summary).toMatchObject({ failed: 0, archived: 0 });
    const paused = await until(
      "archiving paused",
      async () => (await op!.fleetState()).archivePaused ?? false,
    );
    expect(paused).toMatchObject({ kind: "store-unavailable", reason: expect.stringMatching(reason) });
    // `status`: the text a person reads, and --json.
    const all = await readAllStatus({ ledger: op!.ledger, fleet: () => op!.fleetState(), clock: op!.clock });
    expect(all.archivePaused?.reason).toMatch(reason);
    expect(allLines(all).join("\n")).toMatch(
      /archive: PAUSED since .* \(store-unavailable\): .*resumes by itself/,
    );
    const [alert] = await until("the archiving.paused alert", () => {
      const sent = receiver!.of("archiving.paused");
      return sent.length > 0 ? sent : false;
    });
    expect(alert?.text).toMatch(/archiving PAUSED \(store-unavailable\)/);
    expect(alert?.reason).toMatch(reason);
  }

  /** The batch finished with every row archived and none failed; the pause is gone and told so. */
  async function expectResumed(batch: string): Promise<BatchSummary> {
    const summary = await h!.pipeline.waitFinished(batch, 30_000);
    expect(summary).toMatchObject({ total: ROWS.length, archived: ROWS.length, failed: 0 });
    expect((await op!.fleetState()).archivePaused).toBeNull();
    await until("the archiving.resumed alert", () => receiver!.of("archiving.resumed").length > 0);
    expect(receiver!.of("archiving.paused")).toHaveLength(1);
    return summary;
  }

  it("a missing bucket: rows wait in archiving; once the bucket exists they are archived, expired URLs refreshed", async () => {
    const bucket = `later-${Date.now()}`;
    // The first row's image write, refused: its job then waits at the gate and downloads again
    // once the bucket exists. Rows that finish once the pause is on never download before it.
    // (Rows finishing with the first could fetch their bytes before the URLs expire below and
    // write them once the bucket exists: no fresh URL needed, as one CI run met.)
    let firstRefused = false;
    const counting = await startS3Proxy(aws.s3.endpoint, (req, res) => {
      if (req.method === "PUT" && req.url?.startsWith(`/${bucket}/first/a.png`))
        res.on("finish", () => {
          firstRefused = true;
        });
      return false;
    });
    cleanups.push(() => counting.close());
    await start({ S3_BUCKET: bucket, S3_ENDPOINT: counting.endpoint, S3_FORCE_PATH_STYLE: "true" });
    await h!.pipeline.addRows("first", [{ id: "a" }]);
    await until("the first row's write refused", () => firstRefused);
    await until("archiving paused", async () => (await op!.fleetState()).archivePaused ?? false);
    const downloadsBefore = h!.pipeline.sim.stats().downloads;
    await h!.pipeline.addRows("nobucket", ROWS);
    await expectOutageShown("nobucket", /NoSuchBucket/);
    expect(h!.pipeline.sim.stats().downloads, "rows archived while paused download nothing").toBe(
      downloadsBefore,
    );

    // A long outage: the result URLs expired meanwhile.
    for (const [batch, rows] of [
      ["first", [{ id: "a" }]],
      ["nobucket", ROWS],
    ] as const) {
      for (const { id } of rows) {
        const row = await h!.pipeline.ledger.getRow(batch, id);
        h!.pipeline.sim.expireFiles(row!.taskId!);
      }
    }
    const refreshesBefore = h!.pipeline.sim.stats().downloadUrlCalls;
    await aws.client.send(new CreateBucketCommand({ Bucket: bucket }));
    await expectResumed("nobucket");
    expect(await h!.pipeline.waitFinished("first", 30_000)).toMatchObject({ archived: 1, failed: 0 });
    expect(h!.pipeline.sim.stats().downloadUrlCalls - refreshesBefore).toBeGreaterThanOrEqual(
      ROWS.length + 1,
    );
    const row = await h!.pipeline.ledger.getRow("nobucket", "a");
    expect(row?.images?.[0]?.location).toBe(`s3://${bucket}/nobucket/a.png`);
  });

  it.each<[string, Refusal, string[] | undefined, RegExp]>([
    // A bucket policy that denies PutObject: the HEAD passes, the write gets S3's XML error.
    ["denies the write", "AccessDenied", ["PUT", "POST"], /\(HTTP 403\): AccessDenied/],
    ["refuses the credential on writes", "InvalidAccessKeyId", ["PUT", "POST"], /InvalidAccessKeyId/],
    ["refuses the signature on writes", "SignatureDoesNotMatch", ["PUT", "POST"], /SignatureDoesNotMatch/],
    // A rotated key refuses everything; the first call, a HEAD, gets a 403 without a body.
    ["refuses everything with a bare 403", "bare-403", undefined, /\(HTTP 403\)/],
    // MinIO below its free-drive threshold refuses writes; reads go on.
    ["is full (MinIO's 507)", "XMinioStorageFull", ["PUT", "POST"], /\(HTTP 507\): XMinioStorageFull/],
    // An S3-compatible that does not take the SDK's default checksums: the reason names the fix.
    [
      "refuses the SDK's request checksums",
      "XAmzContentSHA256Mismatch",
      ["PUT", "POST"],
      /XAmzContentSHA256Mismatch.*AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED/,
    ],
  ])(
    "an S3 store that %s: rows wait, then all are archived once it accepts",
    async (_name, refusal, methods, reason) => {
      proxy = await startRefusingS3(aws.s3.endpoint);
      proxy.refuse(refusal, methods);
      await start({ S3_BUCKET: aws.s3.bucket, S3_ENDPOINT: proxy.endpoint, S3_FORCE_PATH_STYLE: "true" });
      const batch = `refused-${refusal.toLowerCase()}`;
      await h!.pipeline.addRows(batch, ROWS);
      await expectOutageShown(batch, reason);
      proxy.refuse(null);
      await expectResumed(batch);
    },
  );

  it.runIf(CAN_MOUNT)(
    "a full disk: rows wait in archiving (none fails), then all are archived once space is freed",
    async () => {
      const base = await mkdtemp(join(tmpdir(), "kie-full-"));
      cleanups.push(() => rm(base, { recursive: true, force: true }));
      const unmount = mountTmpfs(base, "256k");
      if (!unmount) throw new Error(`could not mount a tmpfs at ${base}`);
      cleanups.unshift(unmount);
      // Every byte taken: the first write that needs a page meets ENOSPC.
      const filler = join(base, "filler");
      await writeFile(filler, Buffer.alloc(512 * 1024)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOSPC") throw error;
      });
      // The floor a full disk's pause waits for, within this tmpfs (the default is 256 MiB).
      await start({ ARCHIVE_DIR: join(base, "archive"), KIE_ARCHIVE_MIN_FREE: "128KiB" });
      await h!.pipeline.addRows("fulldisk", ROWS);
      await expectOutageShown("fulldisk", /ENOSPC/);
      await unlink(filler);
      await expectResumed("fulldisk");
    },
  );

  it("a folder that is not writable: rows wait, then all are archived once it is writable", async () => {
    const base = await mkdtemp(join(tmpdir(), "kie-outage-"));
    cleanups.push(() => rm(base, { recursive: true, force: true }));
    // ARCHIVE_DIR is a link, so the test can make "the folder" writable under a running worker.
    // Root writes through mode bits: as root it points into sysfs, which refuses mkdir (EPERM).
    const readOnly = join(base, "read-only");
    await mkdir(readOnly, { mode: 0o555 });
    const archiveDir = join(base, "archive");
    await symlink(process.getuid?.() === 0 ? "/sys" : readOnly, archiveDir);
    await start({ ARCHIVE_DIR: archiveDir });
    await h!.pipeline.addRows("rofolder", ROWS);
    await expectOutageShown("rofolder", /EACCES|EPERM|EROFS/);

    const writable = join(base, "writable");
    await mkdir(writable);
    await symlink(writable, join(base, "archive.next"));
    await rename(join(base, "archive.next"), archiveDir);
    await expectResumed("rofolder");
  });
});
