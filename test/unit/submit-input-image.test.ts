/**
 * The submit stage with a row's local input image: uploaded before the create and sent as its
 * image_url; an upload failure never loses the row, never holds an in-flight slot, and never
 * counts a create (nothing was created).
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KieError } from "../../src/kie/errors.js";
import type { KieApi, SubmitRequest } from "../../src/kie/types.js";
import { InputImages } from "../../src/worker/input-image.js";
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

function setup(upload: () => Promise<{ downloadUrl: string }>) {
  const ledger = oneRowLedger(rowRecord({ params, estimatedCredits: 10 }));
  const clock = fakeClock();
  const creates: SubmitRequest[] = [];
  const released: string[] = [];
  const inFlight = { taken: 0, released: 0 };
  const kie: KieApi = {
    submit: async (request) => {
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
      getRow: ledger.getRow,
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
        inFlight.taken++;
        return true;
      },
      releaseInFlight: async () => {
        inFlight.released++;
      },
    }),
    queues: { addPoll: async () => undefined },
    inputImages: new InputImages({ clock, uploader: { upload } }),
    clock,
    settings: { pollFirstMs: 5_000 },
  };
  return { deps, ledger, creates, released, inFlight };
}

describe("submit with a local input image", () => {
  it("uploads the file and sends its URL as image_url, never the path", async () => {
    const f = setup(async () => ({ downloadUrl: "https://files.test/mug.png" }));
    expect(await submitStage.run(stageJob(job), f.deps)).toEqual({ kind: "done" });
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
    expect(f.inFlight).toEqual({ taken: 1, released: 1 });
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
    expect(f.inFlight).toEqual({ taken: 1, released: 1 });
  });
});
