/**
 * The submit stage with a row's local input image: uploaded before the create and sent as its
 * image_url; an upload failure never loses the row, never holds an in-flight slot, and never
 * counts a create (nothing was created).
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/core/logger.js";
import { keyRing } from "../../src/fleet/key-ring.js";
import type { PauseKind } from "../../src/fleet/policy.js";
import { KieError } from "../../src/kie/errors.js";
import type { KieApi, SubmitRequest } from "../../src/kie/types.js";
import type { FileUploader } from "../../src/kie/upload.js";
import { InputImages } from "../../src/worker/input-image.js";
import { uploadInputImage } from "../../src/worker/input-image-step.js";
import type { SubmitJob } from "../../src/worker/jobs.js";
import { StageError } from "../../src/worker/stage.js";
import { type SubmitDeps, submitStage } from "../../src/worker/submit.js";
import { openFleet } from "../helpers/open-fleet.js";
import { fakeClock, oneRowLedger, rowRecord, stageJob } from "../helpers/stage-fakes.js";

const dir = mkdtempSync(join(tmpdir(), "kie-submit-image-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const PNG = Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), Buffer.from("a mug")]);
const path = join(dir, "mug.png");
writeFileSync(path, PNG);
const params = {
  model: "edit",
  image_path: path,
  image_sha256: createHash("sha256").update(PNG).digest("hex"),
  acceleration_level: "high",
};
const job: SubmitJob = { batch: "b", rowId: "r1", resubmit: 0 };
const never = async (): Promise<never> => {
  throw new Error("not expected in this test");
};

function setup(
  upload: () => Promise<{ downloadUrl: string }>,
  events: string[] = [],
  uploaders?: FileUploader[],
) {
  const ledger = oneRowLedger(rowRecord({ params, estimatedCredits: 10 }));
  const clock = fakeClock();
  const creates: SubmitRequest[] = [];
  const released: string[] = [];
  const inFlight = { taken: 0, released: 0 };
  const kie: KieApi = {
    submit: async (request) => {
      events.push("create");
      creates.push(request);
      return "t-1";
    },
    getTask: never,
    refreshDownloadUrl: never,
    getCredits: never,
  };
  const deps: SubmitDeps = {
    kie,
    ledger: {
      batchMarks: async () => ({ cancelled: false, purging: false }),
      getRow: ledger.getRow,
      getRowState: ledger.getRowState,
      transition: ledger.transition,
      reserveBudget: async () => "reserved",
      releaseReservation: async (_batch, rowId) => {
        released.push(rowId);
        return 10;
      },
      keepUncertain: never,
    },
    fleet: openFleet({
      tryAcquireInFlight: async () => {
        events.push("in-flight");
        inFlight.taken++;
        return true;
      },
      createSlot: async () => {
        events.push("rate slot");
      },
      releaseInFlight: async () => {
        inFlight.released++;
      },
    }),
    queues: { addPoll: async () => undefined },
    inputImages: new InputImages({
      clock,
      uploader: {
        upload: () => {
          events.push("upload");
          return upload();
        },
      },
      ...(uploaders ? { uploaders } : {}),
    }),
    clock,
    settings: { pollFirstMs: 5_000 },
  };
  return { deps, ledger, creates, released, inFlight };
}

describe("submit with a local input image", () => {
  it("uploads the file and sends its URL as image_url, never the path", async () => {
    const events: string[] = [];
    const f = setup(async () => ({ downloadUrl: "https://files.test/mug.png" }), events);
    expect(await submitStage.run(stageJob(job), f.deps)).toEqual({ kind: "done" });
    // One key: the upload (up to 10 MiB) holds neither the in-flight slot nor the rate slot.
    expect(events).toEqual(["upload", "in-flight", "rate slot", "create"]);
    expect(f.creates).toHaveLength(1);
    expect(f.creates[0]).toMatchObject({ model: "edit", image_url: "https://files.test/mug.png" });
    // image_path and image_sha256 stay in the request object but no flavour puts them on the wire.
    expect(f.ledger.current()).toMatchObject({ status: "submitted", taskIds: ["t-1"] });
  });

  it("a transient upload failure retries the job: the row stays queued, its slot is given back", async () => {
    const f = setup(async () => {
      throw new KieError({ code: "server_error", retryable: true, message: "upload: server error" });
    });
    const error = await submitStage
      .run(stageJob(job, { attemptsMade: 0, attempts: 8 }), f.deps)
      .catch((e) => e);
    expect(error).toBeInstanceOf(StageError);
    expect(f.creates).toEqual([]);
    expect(f.ledger.current()).toMatchObject({ status: "queued" });
    // The upload came before the key choice: no in-flight slot was taken for it.
    expect(f.inFlight).toEqual({ taken: 0, released: 0 });
    expect(f.released).toEqual([]);
  });

  it("a refused upload fails the row with the reason and gives its reservation back", async () => {
    const f = setup(async () => {
      throw new KieError({
        code: "unknown_code",
        retryable: false,
        message: "file too large: at most 1000 bytes",
      });
    });
    expect(await submitStage.run(stageJob(job), f.deps)).toEqual({ kind: "done" });
    expect(f.creates).toEqual([]);
    expect(f.ledger.current()).toMatchObject({ status: "failed" });
    expect(f.ledger.current()?.error).toContain("file too large");
    expect(f.released).toEqual(["r1"]);
    expect(f.inFlight).toEqual({ taken: 0, released: 0 });
  });

  it("with two keys, an upload refused with the first (401) pauses the first, names it, and the row uploads with the second", async () => {
    const pauses: string[] = [];
    const uploads: string[] = [];
    const refused = () => {
      uploads.push("aaaa");
      throw new KieError({
        code: "unauthorized",
        retryable: true,
        fleetEffect: "bad-key",
        message: "upload: bad or missing API key",
      });
    };
    const f = setup(
      async () => refused(),
      [],
      [
        { upload: async () => refused() },
        {
          upload: async () => {
            uploads.push("bbbb");
            return { downloadUrl: "https://files.test/by-b.png" };
          },
        },
      ],
    );
    let aPaused: PauseKind | undefined;
    const first = openFleet({
      pause: async (kind) => {
        pauses.push(`aaaa:${kind}`);
        aPaused = kind;
        return true;
      },
      readGate: async () => ({
        paused: aPaused ? { kind: aPaused, reason: "401", since: 0 } : null,
        backoffMs: 0,
      }),
      tryAcquireInFlight: async () => {
        pauses.push("aaaa:in-flight");
        return true;
      },
    });
    const second = openFleet({
      pause: async (kind) => {
        pauses.push(`bbbb:${kind}`);
        return true;
      },
      tryAcquireInFlight: async () => {
        pauses.push("bbbb:in-flight");
        return true;
      },
    });
    f.deps.fleet = first;
    f.deps.keys = keyRing([
      { id: "aaaa", account: "aaaa", kie: f.deps.kie, fleet: first },
      { id: "bbbb", account: "bbbb", kie: f.deps.kie, fleet: second },
    ]);
    const lines: string[] = [];
    const log = createLogger({
      level: "info",
      pretty: false,
      destination: new Writable({
        write(chunk, _encoding, callback) {
          lines.push(String(chunk));
          callback();
        },
      }),
    });
    expect(await submitStage.run(stageJob(job, { log }), f.deps)).toEqual({ kind: "done" });
    // The first key is paused for its 401 and never asked again; the second uploads, and the
    // create (on the key the key choice makes: the open second) sends its URL.
    expect(uploads).toEqual(["aaaa", "bbbb"]);
    expect(pauses).toEqual(["aaaa:bad-key", "bbbb:in-flight"]);
    expect(f.creates).toEqual([expect.objectContaining({ image_url: "https://files.test/by-b.png" })]);
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged.filter((l) => String(l.msg).startsWith("input image not uploaded"))).toEqual([
      expect.objectContaining({ key: "aaaa", code: "unauthorized" }),
    ]);
  });

  it("with two keys, a row without a local image reads no gate and waits for none", async () => {
    const closed = openFleet({
      readGate: async () => {
        throw new Error("no gate read is expected for a row without an image");
      },
    });
    const deps = {
      fleet: closed,
      keys: keyRing([
        { id: "aaaa", account: "aaaa", kie: {} as KieApi, fleet: closed },
        { id: "bbbb", account: "bbbb", kie: {} as KieApi, fleet: closed },
      ]),
      clock: { sleep: never },
    } as unknown as Parameters<typeof uploadInputImage>[2];
    expect(
      await uploadInputImage({ model: "text-to-image", prompt: "a fox" } as never, stageJob(job), deps),
    ).toEqual({});
  });

  it("with two keys both refusing uploads, the row waits (no upload loop) until one may upload", async () => {
    const uploads: string[] = [];
    const paused = new Set<string>();
    const refusedBy = (id: string) => async (): Promise<{ downloadUrl: string }> => {
      uploads.push(id);
      throw new KieError({
        code: "unauthorized",
        retryable: true,
        fleetEffect: "bad-key",
        message: "upload: bad or missing API key",
      });
    };
    const f = setup(refusedBy("aaaa"), [], [{ upload: refusedBy("aaaa") }, { upload: refusedBy("bbbb") }]);
    const fleetOf = (id: string) =>
      openFleet({
        pause: async () => {
          paused.add(id);
          return true;
        },
        readGate: async () => ({
          paused: paused.has(id) ? { kind: "bad-key", reason: "401", since: 0 } : null,
          backoffMs: 0,
        }),
      });
    f.deps.fleet = fleetOf("aaaa");
    f.deps.keys = keyRing([
      { id: "aaaa", account: "aaaa", kie: f.deps.kie, fleet: f.deps.fleet },
      { id: "bbbb", account: "bbbb", kie: f.deps.kie, fleet: fleetOf("bbbb") },
    ]);
    const controller = new AbortController();
    const sleeps: number[] = [];
    f.deps.clock = {
      ...f.deps.clock,
      sleep: async (ms: number) => {
        sleeps.push(ms);
        if (sleeps.length === 3) controller.abort(new Error("stop"));
      },
    };
    await expect(submitStage.run(stageJob(job, { signal: controller.signal }), f.deps)).rejects.toThrow(
      "stop",
    );
    // Each key tried once, then only waits: no upload while both are paused.
    expect(uploads).toEqual(["aaaa", "bbbb"]);
    expect(sleeps).toEqual([2_000, 2_000, 2_000]);
    expect(f.creates).toEqual([]);
  });

  it("a create refused as invalid (its upload expired early) is made once more with a fresh upload", async () => {
    let refusals = 1;
    let uploads = 0;
    const f = setup(async () => ({ downloadUrl: `https://files.test/${++uploads}` }));
    const submit = f.deps.kie.submit;
    f.deps.kie = {
      ...f.deps.kie,
      submit: async (request, signal) => {
        if (refusals-- > 0) {
          f.creates.push(request);
          throw new KieError({
            code: "validation",
            retryable: false,
            message: "image_url could not be fetched",
          });
        }
        return submit(request, signal);
      },
    };
    expect(await submitStage.run(stageJob(job), f.deps)).toEqual({ kind: "done" });
    expect(f.creates.map((c) => c.image_url)).toEqual(["https://files.test/1", "https://files.test/2"]);
    expect(f.ledger.current()).toMatchObject({ status: "submitted", taskIds: ["t-1"] });
    expect(f.released).toEqual([]);
  });

  it("a second refusal after the fresh upload fails the row and gives its reservation back", async () => {
    let uploads = 0;
    const f = setup(async () => ({ downloadUrl: `https://files.test/${++uploads}` }));
    f.deps.kie = {
      ...f.deps.kie,
      submit: async (request) => {
        f.creates.push(request);
        throw new KieError({
          code: "validation",
          retryable: false,
          message: "image_url could not be fetched",
        });
      },
    };
    expect(await submitStage.run(stageJob(job), f.deps)).toEqual({ kind: "done" });
    expect(f.creates).toHaveLength(2);
    expect(uploads).toBe(2);
    expect(f.ledger.current()).toMatchObject({ status: "failed" });
    expect(f.ledger.current()?.error).toContain("image_url could not be fetched");
    expect(f.released).toEqual(["r1"]);
  });
});
