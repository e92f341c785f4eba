import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ArchiveFromUrlOptions, ArchiveStoreHead } from "../../src/archive/index.js";
import { ArchiveStoreError, DownloadError } from "../../src/archive/index.js";
import { retryDelay } from "../../src/core/backoff.js";
import { silentLogger } from "../../src/core/logger.js";
import type { ArchivePauseState } from "../../src/fleet/archive-pause.js";
import { keyRing } from "../../src/fleet/key-ring.js";
import { PAUSE_RECHECK_MS } from "../../src/fleet/policy.js";
import type { FleetPort } from "../../src/fleet/port.js";
import { KieError } from "../../src/kie/errors.js";
import type { KieApi } from "../../src/kie/types.js";
import type { ArchivedImage, RowRecord } from "../../src/ledger/types.js";
import { type ArchiveDeps, archiveStage, TRANSIENT_REFRESH_FROM_TRY } from "../../src/worker/archive.js";
import { storeGateOf } from "../../src/worker/archive-gate.js";
import { REFUSED_TRIES } from "../../src/worker/archive-refresh.js";
import type { ArchiveJob } from "../../src/worker/jobs.js";
import { fakeClock, oneRowLedger, rowRecord, stageJob, T0 } from "../helpers/stage-fakes.js";

const DAY_MS = 86_400_000;
const sha = (text: string) => createHash("sha256").update(text).digest("hex");

// Jitter factor 1 for the retry backoff.
beforeEach(() => {
  vi.spyOn(Math, "random").mockReturnValue(0.5);
});
afterEach(() => {
  vi.restoreAllMocks();
});

function archiveJob(overrides: Partial<ArchiveJob> = {}): ArchiveJob {
  return {
    batch: "b",
    rowId: "r1",
    taskId: "t-1",
    imageUrls: ["https://files.example/t-1/0.png"],
    completedAt: T0,
    tries: 0,
    ...overrides,
  };
}

interface Put {
  key: string;
  text: string;
  contentType: string;
  metadata: Record<string, string> | undefined;
}

/** A row whose task t-1 has finished, the archive stage's fakes, and what they saw. */
function setup(
  options: {
    row?: Partial<RowRecord>;
    head?: ArchiveStoreHead;
    copyFails?: unknown[];
    /** Failures of the store probe's put, in order (then it answers). */
    probeFails?: unknown[];
    /** Failures of the row's own puts (its sidecar), in order (then they succeed). */
    putFails?: unknown[];
  } = {},
) {
  const ledger = oneRowLedger(
    rowRecord({
      status: "archiving",
      taskId: "t-1",
      taskIds: ["t-1"],
      prompt: "一只狐狸",
      submittedAt: T0 - 60_000,
      creditsSpent: 8,
      ...options.row,
    }),
  );
  const clock = fakeClock(T0 + 1_000);
  const copies: ArchiveFromUrlOptions[] = [];
  const puts: Put[] = [];
  const refreshed: string[] = [];
  const failures = [...(options.copyFails ?? [])];
  const probeFailures = [...(options.probeFails ?? [])];
  const putFailures = [...(options.putFails ?? [])];
  const removed: string[] = [];
  /** The deployment's archive pause, in memory: a probe is always due once paused. */
  const storePause = {
    state: null as ArchivePauseState | null,
    started: [] as { reason: string; probeEveryMs: number | undefined }[],
    resumed: 0,
  };
  const deps: ArchiveDeps = {
    kie: {
      refreshDownloadUrl: async (url) => {
        refreshed.push(url);
        return `${url}?fresh`;
      },
    },
    ledger: { getRow: ledger.getRow, transition: ledger.transition },
    store: {
      locationOf: (key) => `/archive/${key}`,
      head: async () => options.head,
      remove: async (key) => void removed.push(key),
      put: async (key, body: Readable, putOptions) => {
        if (key === ".kie-batch-probe.json" && probeFailures.length > 0) {
          body.destroy();
          throw probeFailures.shift();
        }
        if (key !== ".kie-batch-probe.json" && putFailures.length > 0) {
          body.destroy();
          throw putFailures.shift();
        }
        const chunks: Buffer[] = [];
        for await (const chunk of body) chunks.push(chunk as Buffer);
        puts.push({
          key,
          text: Buffer.concat(chunks).toString("utf8"),
          contentType: putOptions.contentType,
          metadata: putOptions.metadata,
        });
      },
    },
    storePause: {
      get: async () => storePause.state,
      pause: async (kind, reason, pauseOptions) => {
        const floor = {
          ...(pauseOptions?.minFreeBytes === undefined ? {} : { minFreeBytes: pauseOptions.minFreeBytes }),
          ...(pauseOptions?.probeMultipart ? { probeMultipart: true } : {}),
        };
        if (storePause.state) {
          // As pause.lua: a full disk met during a pause in force holds its probe too.
          storePause.state = { ...storePause.state, ...floor };
          return false;
        }
        storePause.state = { kind, reason, since: clock.now(), nextProbeAt: clock.now(), ...floor };
        storePause.started.push({ reason, probeEveryMs: pauseOptions?.probeEveryMs });
        return true;
      },
      resume: async () => {
        storePause.state = null;
        storePause.resumed++;
      },
      claimProbe: async () => storePause.state !== null,
    },
    clock,
    settings: { downloadHosts: [], fileLifetimeMs: 14 * DAY_MS, storeProbeMs: 1_000 },
    copyImage: async (copy) => {
      copies.push(copy);
      const failure = failures.shift();
      if (failure !== undefined) throw failure;
      const key = `${copy.key}.png`;
      return { key, location: `/archive/${key}`, bytes: 100, sha256: sha(key), contentType: "image/png" };
    },
  };
  return { deps, ledger, clock, copies, puts, refreshed, removed, storePause, copyFails: failures };
}

const image = (key: string): ArchivedImage => ({
  key,
  location: `/archive/${key}`,
  bytes: 100,
  sha256: sha(key),
  contentType: "image/png",
});

describe("archive stage", () => {
  it("owns the rows being archived", () => {
    expect(archiveStage.name).toBe("archive");
    expect(archiveStage.owns).toEqual(["archiving"]);
  });

  it("copies every image, then writes the sidecar, then moves the row to archived", async () => {
    const f = setup();
    const job = stageJob(
      archiveJob({ imageUrls: ["https://files.example/0.png", "https://files.example/1.png"] }),
    );
    expect(await archiveStage.run(job, f.deps)).toEqual({ kind: "done" });

    expect(f.copies.map((c) => [c.url, c.key])).toEqual([
      ["https://files.example/0.png", "b/r1"],
      ["https://files.example/1.png", "b/r1@2"],
    ]);
    // Image metadata is ASCII: the prompt only as its hash.
    expect(f.copies[0]?.metadata).toEqual({
      "task-id": "t-1",
      "prompt-sha256": sha("一只狐狸"),
      batch: "b",
      "row-id": "r1",
    });

    expect(f.puts).toHaveLength(1);
    const [put] = f.puts;
    expect(put?.key).toBe("b/r1.json");
    expect(put?.contentType).toBe("application/json; charset=utf-8");
    expect(put?.metadata).toEqual({
      "task-id": "t-1",
      images: `r1.png:100:${sha("b/r1.png")},r1@2.png:100:${sha("b/r1@2.png")}`,
    });
    expect(JSON.parse(put?.text ?? "")).toEqual({
      batch: "b",
      id: "r1",
      line: 2,
      prompt: "一只狐狸",
      params: { acceleration_level: "none" },
      metadata: {},
      taskId: "t-1",
      taskIds: ["t-1"],
      images: [image("b/r1.png"), image("b/r1@2.png")],
      sha256: sha("b/r1.png"),
      bytes: 100,
      credits: 8,
      uncertain: 0,
      resubmits: 0,
      submittedAt: new Date(T0 - 60_000).toISOString(),
      completedAt: new Date(T0).toISOString(),
      archivedAt: new Date(T0 + 1_000).toISOString(),
      model: "text-to-image",
    });

    expect(f.ledger.current()).toMatchObject({
      status: "archived",
      images: [image("b/r1.png"), image("b/r1@2.png")],
      archivedAt: T0 + 1_000,
    });
  });

  it("a re-run finds the sidecar of its task: no image copied again, the sidecar written again (a put that failed after its rename may have left it not durable)", async () => {
    const f = setup({
      head: { size: 500, metadata: { "task-id": "t-1", images: `r1.png:100:${sha("b/r1.png")}` } },
    });
    await archiveStage.run(stageJob(archiveJob()), f.deps);
    expect(f.copies).toEqual([]);
    expect(f.puts.map((p) => p.key)).toEqual(["b/r1.json"]);
    // The same images as the one found: what a head of it answers again.
    expect(f.puts[0]?.metadata).toEqual({ "task-id": "t-1", images: `r1.png:100:${sha("b/r1.png")}` });
    expect(f.ledger.current()).toMatchObject({ status: "archived", images: [image("b/r1.png")] });
  });

  it("a re-run finds the sidecar of a task with two images (the second named <id>@2): nothing copied again", async () => {
    const images = `r1.png:100:${sha("b/r1.png")},r1@2.png:100:${sha("b/r1@2.png")}`;
    const f = setup({ head: { size: 500, metadata: { "task-id": "t-1", images } } });
    await archiveStage.run(
      stageJob(archiveJob({ imageUrls: ["https://files.example/0.png", "https://files.example/1.png"] })),
      f.deps,
    );
    expect(f.copies).toEqual([]);
    expect(f.puts[0]?.metadata).toEqual({ "task-id": "t-1", images });
    expect(f.ledger.current()).toMatchObject({
      status: "archived",
      images: [image("b/r1.png"), image("b/r1@2.png")],
    });
  });

  it("a sidecar found whose rewrite fails is tried again even past the image's lifetime (nothing left to download), and the row is not failed", async () => {
    const f = setup({
      head: { size: 500, metadata: { "task-id": "t-1", images: `r1.png:100:${sha("b/r1.png")}` } },
      putFails: [new ArchiveStoreError({ code: "unavailable", message: "503" })],
    });
    f.clock.advance(15 * DAY_MS);
    const result = await archiveStage.run(stageJob(archiveJob({ tries: 3 })), f.deps);
    expect(result).toMatchObject({ kind: "delay", data: { tries: 4 } });
    expect((result as { ms: number }).ms).toBeGreaterThan(0);
    expect(f.ledger.current()?.status).toBe("archiving");
    expect(f.copies).toEqual([]);
    // The next run writes it and archives the row.
    await archiveStage.run(stageJob(archiveJob({ tries: 4 })), f.deps);
    expect(f.ledger.current()).toMatchObject({ status: "archived", images: [image("b/r1.png")] });
  });

  it("a sidecar left by an older task of the row does not count", async () => {
    const f = setup({
      head: { size: 500, metadata: { "task-id": "t-0", images: `r1.png:100:${sha("b/r1.png")}` } },
    });
    await archiveStage.run(stageJob(archiveJob()), f.deps);
    expect(f.copies).toHaveLength(1);
    expect(f.puts.map((p) => p.key)).toEqual(["b/r1.json"]);
  });

  it("an expired result URL is refreshed through KIE once", async () => {
    const f = setup({ copyFails: [new DownloadError({ code: "expired", message: "410" })] });
    await archiveStage.run(stageJob(archiveJob()), f.deps);
    expect(f.refreshed).toEqual(["https://files.example/t-1/0.png"]);
    expect(f.copies.map((c) => c.url)).toEqual([
      "https://files.example/t-1/0.png",
      "https://files.example/t-1/0.png?fresh",
    ]);
    expect(f.ledger.current()?.status).toBe("archived");
  });

  it.each([
    ["another 4xx", new DownloadError({ code: "http_error", message: "HTTP 401", httpStatus: 401 })],
    ["a page that is not the image", new DownloadError({ code: "not_image", message: "text/html" })],
  ])("a result URL answering %s is refreshed once too, before the row fails", async (_name, failure) => {
    const f = setup({ copyFails: [failure] });
    await archiveStage.run(stageJob(archiveJob()), f.deps);
    expect(f.refreshed).toEqual(["https://files.example/t-1/0.png"]);
    expect(f.ledger.current()?.status).toBe("archived");
  });

  it(`when the refresh does not give the image either, the try comes back, and at the ${REFUSED_TRIES}th the row fails with what the result URL answered`, async () => {
    const refusal = () =>
      new DownloadError({
        code: "http_error",
        message: "Image URL files.example/t-1/0.png answered HTTP 451",
        httpStatus: 451,
      });
    const f = setup({ copyFails: [refusal(), refusal()] });
    f.deps.kie.refreshDownloadUrl = async () => {
      throw new KieError({ code: "validation", message: "not a KIE url", retryable: false });
    };
    expect(await archiveStage.run(stageJob(archiveJob()), f.deps)).toMatchObject({
      kind: "delay",
      data: { tries: 1, refusals: 1 },
    });
    expect(f.ledger.current()?.status).toBe("archiving");
    // Refusals are counted apart: tries spent on other errors (an S3 outage, KIE's 429s on the
    // refresh) do not shorten them, so a refusal after a long outage is not the row's last.
    f.copyFails.push(refusal(), refusal());
    expect(await archiveStage.run(stageJob(archiveJob({ tries: 40, refusals: 1 })), f.deps)).toMatchObject({
      kind: "delay",
      data: { tries: 41, refusals: 2 },
    });
    expect(f.ledger.current()?.status).toBe("archiving");
    f.copyFails.push(refusal(), refusal());
    await archiveStage.run(stageJob(archiveJob({ tries: 40, refusals: REFUSED_TRIES - 1 })), f.deps);
    expect(f.ledger.current()).toMatchObject({
      status: "failed",
      error: expect.stringContaining("answered HTTP 451"),
    });
  });

  it("a file host refusing the result URL and a fresh one too (403: a CDN's rule, a file not there yet) is asked again, not the row failed", async () => {
    const forbidden = () => new DownloadError({ code: "expired", message: "HTTP 403", httpStatus: 403 });
    const f = setup({ copyFails: [forbidden(), forbidden()] });
    const result = await archiveStage.run(stageJob(archiveJob()), f.deps);
    expect(result).toMatchObject({ kind: "delay", data: { tries: 1 } });
    expect(f.refreshed).toHaveLength(1);
    expect(f.ledger.current()?.status).toBe("archiving");
    // The host lets it through at the next try.
    await archiveStage.run(stageJob(archiveJob({ tries: 1 })), f.deps);
    expect(f.ledger.current()?.status).toBe("archived");
  });

  it.each([
    [
      "a 429",
      new KieError({ code: "rate_limited", message: "429", retryable: true, fleetEffect: "rate-limited" }),
    ],
    [
      "KIE's maintenance",
      new KieError({ code: "maintenance", message: "455", retryable: true, fleetEffect: "maintenance" }),
    ],
    [
      "a refused key",
      new KieError({ code: "unauthorized", message: "401", retryable: true, fleetEffect: "bad-key" }),
    ],
    ["a 5xx", new KieError({ code: "server_error", message: "500", retryable: true })],
  ])(
    "a refresh that meets %s got no answer about the file: the try comes back later, the row is not failed on the result URL's error",
    async (_name, refusal) => {
      const f = setup({
        copyFails: [new DownloadError({ code: "http_error", message: "HTTP 451", httpStatus: 451 })],
      });
      const refresh = f.deps.kie.refreshDownloadUrl;
      let refusing = true;
      f.deps.kie.refreshDownloadUrl = async (url, signal) => {
        if (refusing) throw refusal;
        return refresh(url, signal);
      };
      const first = await archiveStage.run(stageJob(archiveJob()), f.deps);
      expect(first).toMatchObject({ kind: "delay", data: { tries: 1 } });
      expect(f.ledger.current()?.status).toBe("archiving");
      // KIE answers again: the next try archives through the fresh URL.
      refusing = false;
      f.copyFails.push(new DownloadError({ code: "http_error", message: "HTTP 451", httpStatus: 451 }));
      await archiveStage.run(stageJob(archiveJob({ tries: 1 })), f.deps);
      expect(f.ledger.current()?.status).toBe("archived");
    },
  );

  it("a pause that fails (a Redis blip) after a refused key does not replace KIE's answer: the try comes back", async () => {
    const f = setup({
      copyFails: [new DownloadError({ code: "http_error", message: "HTTP 451", httpStatus: 451 })],
    });
    f.deps.fleet = {
      pollSlot: async () => {},
      pause: async () => Promise.reject(new Error("connection lost")),
    };
    f.deps.kie.refreshDownloadUrl = async () => {
      throw new KieError({ code: "unauthorized", message: "401", retryable: true, fleetEffect: "bad-key" });
    };
    expect(await archiveStage.run(stageJob(archiveJob()), f.deps)).toMatchObject({ kind: "delay" });
    expect(f.ledger.current()?.status).toBe("archiving");
  });

  it("a refresh KIE refuses for the key (401) pauses that key's lane, as a refused status call does", async () => {
    const f = setup({ copyFails: [new DownloadError({ code: "expired", message: "410" })] });
    const paused: string[] = [];
    f.deps.fleet = { pollSlot: async () => {}, pause: async (kind) => paused.push(kind) > 0 };
    f.deps.kie.refreshDownloadUrl = async () => {
      throw new KieError({ code: "unauthorized", message: "401", retryable: true, fleetEffect: "bad-key" });
    };
    const result = await archiveStage.run(stageJob(archiveJob()), f.deps);
    expect(paused).toEqual(["bad-key"]);
    expect(result).toMatchObject({ kind: "delay" });
    expect(f.ledger.current()?.status).toBe("archiving");
  });

  it.each([
    ["an expired URL", 0, new DownloadError({ code: "expired", message: "410" })],
    ["a URL that keeps failing for now", 2, new DownloadError({ code: "transient", message: "502" })],
  ])(
    "%s is refreshed only once a status-call slot (KIE_POLL_RATE) is free",
    async (_name, tries, failure) => {
      const f = setup({ copyFails: [failure] });
      const events: string[] = [];
      f.deps.fleet = { pollSlot: async () => void events.push("slot") };
      const refresh = f.deps.kie.refreshDownloadUrl;
      f.deps.kie.refreshDownloadUrl = async (url, signal) => {
        events.push("refresh");
        return refresh(url, signal);
      };
      await archiveStage.run(stageJob(archiveJob({ tries })), f.deps);
      expect(events).toEqual(["slot", "refresh"]);
      expect(f.ledger.current()?.status).toBe("archived");
    },
  );

  describe("a result URL that keeps failing for now (5xx, a timeout, a reset)", () => {
    const broken = () => new DownloadError({ code: "transient", message: "HTTP 502", httpStatus: 502 });

    it("is tried as it is on the first two tries, with no refresh call", async () => {
      for (const tries of [0, 1]) {
        const f = setup({ copyFails: [broken()] });
        const result = await archiveStage.run(stageJob(archiveJob({ tries })), f.deps);
        expect(result).toMatchObject({ kind: "delay", data: { tries: tries + 1 } });
        expect(f.refreshed).toEqual([]);
        expect(f.copies.map((c) => c.url)).toEqual(["https://files.example/t-1/0.png"]);
      }
    });

    it(`from try ${TRANSIENT_REFRESH_FROM_TRY + 1} on, is tried through a refreshed URL (KIE's download-url) in the same try`, async () => {
      const f = setup({ copyFails: [broken()] });
      await archiveStage.run(stageJob(archiveJob({ tries: TRANSIENT_REFRESH_FROM_TRY })), f.deps);
      expect(f.refreshed).toEqual(["https://files.example/t-1/0.png"]);
      expect(f.copies.map((c) => c.url)).toEqual([
        "https://files.example/t-1/0.png",
        "https://files.example/t-1/0.png?fresh",
      ]);
      expect(f.ledger.current()?.status).toBe("archived");
    });

    it("when the refreshed URL fails too, the try fails with the result URL's error and comes back later", async () => {
      const f = setup({ copyFails: [broken(), new DownloadError({ code: "transient", message: "reset" })] });
      const result = await archiveStage.run(stageJob(archiveJob({ tries: 3 })), f.deps);
      expect(result).toMatchObject({ kind: "delay", data: { tries: 4 } });
      expect(f.refreshed).toHaveLength(1);
      expect(f.ledger.current()?.status).toBe("archiving");
    });

    it("a refresh KIE refuses leaves the try to the result URL's error too (tried again, not failed)", async () => {
      const f = setup({ copyFails: [broken()] });
      f.deps.kie.refreshDownloadUrl = async () => {
        throw new KieError({ code: "server_error", message: "500", retryable: true });
      };
      const result = await archiveStage.run(stageJob(archiveJob({ tries: 2 })), f.deps);
      expect(result).toMatchObject({ kind: "delay", data: { tries: 3 } });
      expect(f.ledger.current()?.status).toBe("archiving");
    });

    it("a full disk met by the refreshed URL's copy pauses archiving (the store's error stands)", async () => {
      const full = new ArchiveStoreError({ code: "no_space", message: "ENOSPC: no space left on device" });
      const f = setup({ copyFails: [broken(), full], probeFails: [full] });
      await archiveStage.run(stageJob(archiveJob({ tries: 2 })), f.deps);
      expect(f.storePause.started).toEqual([
        { reason: expect.stringContaining("ENOSPC"), probeEveryMs: 1_000 },
      ]);
      expect(f.ledger.current()?.status).toBe("archived");
    });
  });

  it("a refused host is not refreshed: a fresh URL of the same file would meet it again", async () => {
    const f = setup({ copyFails: [new DownloadError({ code: "host_refused", message: "10.0.0.1" })] });
    await archiveStage.run(stageJob(archiveJob()), f.deps);
    expect(f.refreshed).toEqual([]);
    expect(f.ledger.current()?.status).toBe("failed");
  });

  it("an expired URL is refreshed with the task's own key, and never with another: a worker without it leaves the job", async () => {
    /** A worker whose keys are `ids`, each refreshing through its own client. */
    const withKeys = (f: ReturnType<typeof setup>, ids: string[]) => {
      const byKey: Record<string, string[]> = {};
      const lanes = ids.map((id) => ({
        id,
        account: id,
        kie: {
          refreshDownloadUrl: async (url: string) => {
            byKey[id] = [...(byKey[id] ?? []), url];
            return `${url}?fresh-${id}`;
          },
        } as unknown as KieApi,
        fleet: { pollSlot: async () => {} } as unknown as FleetPort,
      }));
      f.deps.keys = keyRing(lanes, { keylessId: "dddddddddddddddd" });
      return byKey;
    };
    const expired = () => new DownloadError({ code: "expired", message: "410" });
    const own = setup({ row: { taskKeys: { "t-1": "bbbbbbbbbbbbbbbb" } }, copyFails: [expired()] });
    const used = withKeys(own, ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"]);
    await archiveStage.run(stageJob(archiveJob()), own.deps);
    expect(used).toEqual({ bbbbbbbbbbbbbbbb: ["https://files.example/t-1/0.png"] });
    expect(own.refreshed).toEqual([]);
    expect(own.ledger.current()?.status).toBe("archived");

    // This worker lacks the key (a task recorded without a key is the deployment's default key's).
    for (const row of [{ taskKeys: { "t-1": "cccccccccccccccc" } }, {}]) {
      const f = setup({ row, copyFails: [expired()] });
      const asked = withKeys(f, ["aaaaaaaaaaaaaaaa"]);
      const result = await archiveStage.run(stageJob(archiveJob({ tries: 2 })), f.deps);
      expect(result).toEqual({
        kind: "delay",
        ms: 30_000,
        data: { ...archiveJob({ tries: 2 }), keyMissingSince: T0 + 1_000 },
      });
      expect(asked).toEqual({});
      expect(f.refreshed).toEqual([]);
      expect(f.ledger.current()?.status).toBe("archiving");
    }
  });

  it("a job waiting for a key no running worker has notes the wait for status, says so once at warn, and slows to every 5 minutes after 15", async () => {
    const f = setup({
      row: { taskKeys: { "t-1": "cccccccccccccccc" } },
      copyFails: [
        new DownloadError({ code: "expired", message: "410" }),
        new DownloadError({ code: "expired", message: "410" }),
        new DownloadError({ code: "expired", message: "410" }),
      ],
    });
    const noted: string[] = [];
    let held = false;
    const lanes = [
      {
        id: "aaaaaaaaaaaaaaaa",
        account: "a",
        kie: {} as KieApi,
        fleet: { pollSlot: async () => {} } as unknown as FleetPort,
      },
    ];
    f.deps.keys = keyRing(lanes, {
      // Only a worker that archives takes this job: the holders asked are those of the archive stage.
      held: async (_id, role) => held && role === "archive",
      noteWait: async (id, role) => void noted.push(`${role} ${id}`),
    });
    const warned: string[] = [];
    const run = (data: Partial<ArchiveJob>) => {
      const job = stageJob(archiveJob(data));
      job.log.warn = ((_fields: unknown, message: string) =>
        void warned.push(message)) as typeof job.log.warn;
      return archiveStage.run(job, f.deps);
    };
    const first = await run({});
    expect(first).toMatchObject({ kind: "delay", ms: 30_000, data: { keyMissingSince: T0 + 1_000 } });
    expect(noted).toEqual(["archive cccccccccccccccc"]);
    // Another worker holds it now: nothing noted, and said at debug (the job already waited).
    held = true;
    f.clock.advance(15 * 60_000);
    const later = await run({ keyMissingSince: T0 + 1_000 });
    expect(later).toMatchObject({ kind: "delay", ms: 5 * 60_000, data: { keyMissingSince: T0 + 1_000 } });
    expect(noted).toEqual(["archive cccccccccccccccc"]);
    expect(warned).toHaveLength(1);
    expect(f.ledger.current()?.status).toBe("archiving");
  });

  it("a row purged while its archive ran: its files stay in the store, no result indexed, and the log does not say archived", async () => {
    const f = setup({ row: { params: { seed: 7 } } });
    const recorded: string[] = [];
    f.deps.reuse = {
      results: { record: async (hash: string) => void recorded.push(hash) } as never,
      clock: f.clock,
    };
    // The purge lands between the files and the move: the move finds no row.
    f.deps.ledger = { ...f.deps.ledger, transition: async () => ({ ok: false, finished: false }) as never };
    const said: string[] = [];
    const job = stageJob(archiveJob());
    job.log.info = ((_fields: unknown, message: string) => void said.push(message)) as typeof job.log.info;
    expect(await archiveStage.run(job, f.deps)).toEqual({ kind: "done" });
    expect(f.puts.map((p) => p.key)).toEqual(["b/r1.json"]);
    expect(recorded).toEqual([]);
    expect(said).not.toContain("archived");
    expect(said.some((m) => m.includes("left in the store"))).toBe(true);
  });

  it("a store that is down is tried again with backoff, and the row stays archiving", async () => {
    const f = setup({ copyFails: [new ArchiveStoreError({ code: "unavailable", message: "503" })] });
    const result = await archiveStage.run(stageJob(archiveJob({ tries: 3 })), f.deps);
    expect(result).toEqual({
      kind: "delay",
      ms: retryDelay(3, { baseMs: 2_000, maxMs: 5 * 60_000 }),
      data: archiveJob({ tries: 4 }),
    });
    expect(f.ledger.current()?.status).toBe("archiving");
    expect(f.puts).toEqual([]);
  });

  it("a retry never waits past the image's expected lifetime", async () => {
    const f = setup({ copyFails: [new ArchiveStoreError({ code: "unavailable", message: "503" })] });
    f.clock.advance(14 * DAY_MS - 1_000 - 5_000); // 5 s of the image's life left
    const result = await archiveStage.run(stageJob(archiveJob({ tries: 20 })), f.deps);
    expect(result).toMatchObject({ kind: "delay", ms: 5_000 });
  });

  it.each([
    [
      "an error no retry fixes",
      new ArchiveStoreError({ code: "invalid_metadata", message: "bad metadata" }),
      0,
    ],
    [
      "a store down after the image expired",
      new ArchiveStoreError({ code: "unavailable", message: "503" }),
      14 * DAY_MS,
    ],
  ])("%s fails the row, naming it", async (_name, error, elapsedMs) => {
    const f = setup({ copyFails: [error] });
    f.clock.advance(elapsedMs);
    expect(await archiveStage.run(stageJob(archiveJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.ledger.current()).toMatchObject({
      status: "failed",
      error: `archive failed: ${error.message} [task t-1]`,
    });
  });

  it.each([
    ["a row not archiving", { status: "archived" as const }],
    ["a row whose current task is newer", { taskId: "t-2", taskIds: ["t-1", "t-2"] }],
  ])("%s: nothing is copied or changed", async (_name, row) => {
    const f = setup({ row });
    expect(await archiveStage.run(stageJob(archiveJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.copies).toEqual([]);
    expect(f.ledger.transitions).toEqual([]);
  });
});

describe("archive stage: a store that refuses is the fleet's problem, not the row's", () => {
  it.each([
    ["access denied (S3 AccessDenied, a bare 403, EACCES)", "access_denied"],
    ["a missing bucket", "no_such_bucket"],
    ["a full disk or quota (ENOSPC, EDQUOT, MinIO's 507)", "no_space"],
  ] as const)(
    "%s pauses archiving, waits at the gate, and archives once a probe answers",
    async (_name, code) => {
      const refused = new ArchiveStoreError({ code, message: `S3 put refused: ${code}` });
      const f = setup({ copyFails: [refused], probeFails: [refused, refused] });
      expect(await archiveStage.run(stageJob(archiveJob()), f.deps)).toEqual({ kind: "done" });

      // One pause, with the store's words and this worker's probe interval.
      expect(f.storePause.started).toEqual([
        { reason: expect.stringContaining(`S3 put refused: ${code}`), probeEveryMs: 1_000 },
      ]);
      // Two probes refused (the job waited at the gate after each), the third lifted the pause.
      expect(f.clock.sleeps).toEqual([PAUSE_RECHECK_MS, PAUSE_RECHECK_MS]);
      expect(f.storePause.resumed).toBe(1);
      expect(f.removed).toEqual([".kie-batch-probe.json"]);
      // The row never failed: it waited in archiving, then was archived.
      expect(f.ledger.transitions.map((t) => t.to)).toEqual(["archived"]);
      expect(f.ledger.current()).toMatchObject({ status: "archived", images: [image("b/r1.png")] });
    },
  );

  it("a full disk's pause lasts until KIE_ARCHIVE_MIN_FREE is free, not until a probe's few bytes fit", async () => {
    const full = new ArchiveStoreError({ code: "no_space", message: "ENOSPC: no space left on device" });
    const f = setup({ copyFails: [full] });
    // The image that filled the disk gave its bytes back as it failed: the probe's write fits.
    let free = 64 * 1024;
    f.deps.store.freeBytes = async () => free;
    f.deps.settings = { ...f.deps.settings, storeMinFreeBytes: 256 * 1_048_576 };
    let sleeps = 0;
    f.deps.clock.sleep = async () => {
      // Space is freed after the third look at the gate.
      if (++sleeps === 3) free = 512 * 1_048_576;
    };
    expect(await archiveStage.run(stageJob(archiveJob()), f.deps)).toEqual({ kind: "done" });
    // One pause; the probes held it (no probe object written) until the space was there.
    expect(f.storePause.started).toHaveLength(1);
    expect(f.storePause.resumed).toBe(1);
    expect(sleeps).toBe(3);
    expect(f.copies).toHaveLength(2);
    expect(f.puts.filter((p) => p.key === ".kie-batch-probe.json")).toHaveLength(1);
    expect(f.ledger.current()?.status).toBe("archived");
    // The pause's reason (status, alerts) says what it waits for.
    expect(f.storePause.started[0]?.reason).toContain(
      "a full disk: the store probe waits for KIE_ARCHIVE_MIN_FREE free",
    );
  });

  it("the floor is a full disk's only: a refused folder fixed on a disk with little free space resumes at once, and reuse's own probe asks nothing of the space", async () => {
    const refused = new ArchiveStoreError({ code: "access_denied", message: "EACCES: permission denied" });
    const f = setup({ copyFails: [refused] });
    f.deps.store.freeBytes = async () => 10 * 1_048_576;
    f.deps.settings = { ...f.deps.settings, storeMinFreeBytes: 256 * 1_048_576 };
    let looks = 0;
    f.deps.clock.sleep = async () => {
      if (++looks > 5) throw new Error("archiving still paused after 5 looks at the gate");
    };
    expect(await archiveStage.run(stageJob(archiveJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.storePause.started).toHaveLength(1);
    expect(f.storePause.started[0]?.reason).not.toContain("KIE_ARCHIVE_MIN_FREE");
    expect(f.storePause.resumed).toBe(1);
    expect(f.ledger.current()?.status).toBe("archived");
    // Reuse probes the store to judge a missing source (whose fault?): no floor there.
    const gate = storeGateOf({ ...f.deps, storePause: f.deps.storePause });
    await expect(gate.probe(new AbortController().signal, silentLogger())).resolves.toBeUndefined();
  });

  it("a store refusing the SDK's checksums: its pause's probe writes through a multipart upload too, held while that is refused; other probes write none", async () => {
    const refusal = (what: string) =>
      new ArchiveStoreError({
        code: "checksum_refused",
        message: `${what}: InvalidRequest: x-amz-checksum-crc32`,
      });
    const f = setup({ copyFails: [refusal("put")] });
    let multipartRefused = true;
    let multiparts = 0;
    f.deps.store.putMultipart = async () => {
      multiparts++;
      if (multipartRefused) throw refusal("multipart");
    };
    let looks = 0;
    f.deps.clock.sleep = async () => {
      // The operator sets AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED after the third look.
      if (++looks === 3) multipartRefused = false;
    };
    expect(await archiveStage.run(stageJob(archiveJob()), f.deps)).toEqual({ kind: "done" });
    // One pause, held by its probes (their small put passed each time) until multipart went too.
    expect(f.storePause.started).toHaveLength(1);
    expect(f.storePause.resumed).toBe(1);
    expect(multiparts).toBe(4);
    expect(f.ledger.current()?.status).toBe("archived");

    // Reuse's own probe writes no multipart upload (a store with no multipart must still pass it).
    const gate = storeGateOf({ ...f.deps, storePause: f.deps.storePause });
    multipartRefused = true;
    await expect(gate.probe(new AbortController().signal, silentLogger())).resolves.toBeUndefined();
    expect(multiparts).toBe(4);
  });

  it("a pause for another cause writes no multipart upload in its probe: it lifts once the cause is fixed", async () => {
    const f = setup({
      copyFails: [new ArchiveStoreError({ code: "access_denied", message: "403 AccessDenied" })],
    });
    let multiparts = 0;
    f.deps.store.putMultipart = async () => {
      multiparts++;
      throw new ArchiveStoreError({ code: "checksum_refused", message: "multipart: x-amz-checksum-crc32" });
    };
    let looks = 0;
    f.deps.clock.sleep = async () => {
      if (++looks > 5) throw new Error("archiving still paused after 5 looks at the gate");
    };
    expect(await archiveStage.run(stageJob(archiveJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.storePause.resumed).toBe(1);
    expect(multiparts).toBe(0);
  });

  it("a job that finds archiving paused waits without touching the store until the pause lifts", async () => {
    const f = setup({ probeFails: [new ArchiveStoreError({ code: "access_denied", message: "403" })] });
    f.storePause.state = { kind: "store-unavailable", reason: "r", since: T0, nextProbeAt: T0 };
    expect(await archiveStage.run(stageJob(archiveJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.clock.sleeps).toEqual([PAUSE_RECHECK_MS]);
    // The first copy started only after the probe had answered.
    expect(f.copies).toHaveLength(1);
    expect(f.ledger.current()?.status).toBe("archived");
  });

  it("a shutdown while waiting at the gate hands the job back, the row still archiving", async () => {
    const f = setup();
    f.storePause.state = { kind: "store-unavailable", reason: "r", since: T0 };
    const controller = new AbortController();
    f.deps.clock.sleep = async () => {
      controller.abort(new Error("shutdown"));
      throw controller.signal.reason;
    };
    await expect(
      archiveStage.run(stageJob(archiveJob(), { signal: controller.signal }), f.deps),
    ).rejects.toThrow("shutdown");
    expect(f.ledger.transitions).toEqual([]);
    expect(f.copies).toEqual([]);
  });

  it("a download's 403 is an expired URL (refreshed), not a store outage", async () => {
    const f = setup({ copyFails: [new DownloadError({ code: "expired", message: "403", httpStatus: 403 })] });
    await archiveStage.run(stageJob(archiveJob()), f.deps);
    expect(f.storePause.started).toEqual([]);
    expect(f.refreshed).toHaveLength(1);
    expect(f.ledger.current()?.status).toBe("archived");
  });
});
