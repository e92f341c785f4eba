import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManifestOptionError } from "../../src/manifest/index.js";
import { DEFAULT_PRIORITY } from "../../src/producer/index.js";
import { jobKey, parseJobKey } from "../../src/worker/jobs.js";
import { Collector } from "./ops-helpers.js";
import { csv, type ProducerFixture, producerFixture, stdinOf } from "./producer-helpers.js";

let fx: ProducerFixture;
beforeEach(async () => {
  fx = await producerFixture();
});
afterEach(async () => {
  await fx.close();
});

async function thrownBy(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error, none was thrown");
}

describe("parameters reach the ledger with the right precedence", () => {
  it("row, then --set, then the file's defaults", async () => {
    const file = await fx.files.write(
      "prec.json",
      JSON.stringify({
        rows: [
          { id: "row-wins", prompt: " a ship ", num_inference_steps: 10, style: "noir" },
          { id: "set-wins", prompt: "a harbour" },
        ],
        defaults: { num_inference_steps: 20, guidance_scale: 5, output_format: "jpeg" },
      }),
    );
    await fx.run({ file, batch: "prec", sets: ["num_inference_steps=40", "seed=7"] });
    const rowWins = await fx.ledger.getRow("prec", "row-wins");
    expect(rowWins).toMatchObject({
      prompt: "a ship",
      params: { num_inference_steps: 10, seed: 7, guidance_scale: 5, output_format: "jpg" },
      metadata: { style: "noir" },
      line: 1,
    });
    expect(rowWins?.params).not.toHaveProperty("prompt");
    expect((await fx.ledger.getRow("prec", "set-wins"))?.params).toEqual({
      num_inference_steps: 40,
      seed: 7,
      guidance_scale: 5,
      output_format: "jpg",
    });
  });

  it("a bad --set is refused before anything is read or written", async () => {
    const file = await fx.files.write("s.csv", csv("prompt", "a"));
    const error = await thrownBy(() => fx.run({ file, batch: "s", sets: ["num_inference_steps=lots"] }));
    expect(error).toBeInstanceOf(ManifestOptionError);
    expect((error as Error).message).toContain("--set num_inference_steps");
    expect(await fx.keys()).toEqual([]);
  });
});

describe("a --set parameter some rows' models do not take is named on stderr", () => {
  const url = "https://x.test/a.png";

  it("no row takes it: one line naming the parameter and the file's models; not applied", async () => {
    const file = await fx.files.write("t2i.csv", csv("id,prompt,model", "a,a cat,", "b,a dog,text-to-image"));
    const stderr = new Collector();
    const summary = await fx.run({ file, batch: "t2i", sets: ["strength=0.4", "seed=3"] }, { stderr });
    expect(summary.enqueued).toBe(2);
    expect(stderr.text()).toBe(
      'warning: --set strength=0.4: no row\'s model takes "strength" (models in this file: text-to-image); it was not applied\n',
    );
    expect((await fx.ledger.getRow("t2i", "a"))?.params).toEqual({ seed: 3 });
    // The summary on stdout is unchanged (and stays one object with --json).
    expect(summary.out).not.toContain("strength");
  });

  it("with --json, stdout stays one object and its warnings list the --set line too", async () => {
    const file = await fx.files.write("t2j.csv", csv("id,prompt", "a,a cat"));
    const stderr = new Collector();
    const summary = await fx.run({ file, batch: "t2j", sets: ["strength=0.4"], json: true }, { stderr });
    const parsed = JSON.parse(summary.out) as { warnings: string[] };
    expect(parsed.warnings).toEqual([
      '--set strength=0.4: no row\'s model takes "strength" (models in this file: text-to-image); it was not applied',
    ]);
    expect(stderr.text()).toContain("warning: --set strength=0.4");
  });

  it("some rows take it: says how many did, and which models did not", async () => {
    const file = await fx.files.write(
      "mixed.csv",
      csv(
        "id,prompt,model,image_url",
        "a,a cat,,",
        `b,redo,image-to-image,${url}`,
        `c,redo,edit,${url}`,
        "d,a dog,,",
        "e,bad,,x-not-a-url",
      ),
    );
    const stderr = new Collector();
    await fx.run({ file, batch: "mixed", sets: ["image_size=square_hd", "acceleration=high"] }, { stderr });
    expect(stderr.text()).toBe(
      'warning: --set image_size=square_hd: only 3 of 4 rows took it; "image_size" does not apply to model image-to-image, so it was not applied to the other 1 row\n',
    );
  });

  it("the dry run says the same; a --set every row takes says nothing", async () => {
    const file = await fx.files.write("dry.csv", csv("prompt", "a cat"));
    const stderr = new Collector();
    await fx.run(
      { file, batch: "dry", dryRun: true, sets: ["image_url=https://x.test/a.png?token=s3cr3t"] },
      { stderr },
    );
    expect(stderr.text()).toContain(
      "warning: --set image_url=https://x.test/a.png?token=***: no row's model takes",
    );
    expect(stderr.text()).not.toContain("s3cr3t");
    const quiet = new Collector();
    await fx.run(
      { file, batch: "dry", dryRun: true, sets: ["seed=1", "acceleration=high"] },
      { stderr: quiet },
    );
    expect(quiet.text()).toBe("");
  });
});

describe("--priority and --budget", () => {
  it("--priority becomes the BullMQ priority of every job; without it, the default", async () => {
    const urgent = await fx.files.write("urgent.csv", csv("id,prompt", "u1,a", "u2,b"));
    const bulk = await fx.files.write("bulk.csv", csv("id,prompt", "b1,a"));
    await fx.run({ file: bulk });
    await fx.run({ file: urgent, priority: 3 });
    const submit = fx.queues().queues.submit;
    expect((await submit.getJob(jobKey("urgent", "u1")))?.opts.priority).toBe(3);
    expect((await submit.getJob(jobKey("urgent", "u2")))?.opts.priority).toBe(3);
    expect((await submit.getJob(jobKey("bulk", "b1")))?.opts.priority).toBe(DEFAULT_PRIORITY);
    // Enqueued after the bulk batch, the urgent one is still taken first.
    const next = await submit.getJobs(["prioritized"], 0, 0, true);
    expect(next.map((job) => parseJobKey(job.id ?? "")?.batch)).toEqual(["urgent"]);
  });

  it("a priority out of BullMQ's range is refused", async () => {
    const file = await fx.files.write("p.csv", csv("prompt", "a"));
    for (const priority of [0, 2_097_152, 1.5]) {
      const error = await thrownBy(() => fx.run({ file, priority }));
      expect((error as Error).message).toContain("--priority");
    }
  });

  it("--budget is recorded with the rows, and a later run with another budget replaces it", async () => {
    const file = await fx.files.write("money.csv", csv("prompt", "a", "b"));
    const first = await fx.run({ file, batch: "money", budget: 50 });
    expect(first.out).toMatch(/Budget:\s+50 credits\n/);
    expect((await fx.ledger.getBatch("money"))?.budget).toBe(50);
    await fx.run({ file, batch: "money", budget: 80 });
    expect((await fx.ledger.getBatch("money"))?.budget).toBe(80);
  });

  it("--budget with no valid row sets it on an existing batch, and says so when there is none", async () => {
    const good = await fx.files.write("good.csv", csv("prompt", "a"));
    const bad = await fx.files.write("bad.csv", csv("prompt,seed", "a,x"));
    await fx.run({ file: good, batch: "m" });
    await fx.run({ file: bad, batch: "m", budget: 12.5 });
    expect((await fx.ledger.getBatch("m"))?.budget).toBe(12.5);

    const none = await fx.run({ file: bad, batch: "nobatch", budget: 5 });
    expect(none.budgetNotSet).toBe(true);
    expect(none.out).toContain("not set: the batch has no rows yet");
  });
});

describe("reporting", () => {
  it("--json prints exactly the documented fields first, one object", async () => {
    const file = await fx.files.write("j.csv", csv("prompt,steps,seed", "a,1,1", "b,2,x", "a,1,1"));
    const summary = await fx.run({ file, batch: "j", json: true });
    const lines = summary.out.trim().split("\n");
    expect(lines).toHaveLength(1);
    const parsed = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.keys(parsed).slice(0, 7)).toEqual([
      "batch",
      "total",
      "enqueued",
      "duplicates",
      "invalid",
      "warnings",
      "estimatedCredits",
    ]);
    expect(parsed).toMatchObject({
      batch: "j",
      total: 3,
      enqueued: 1,
      duplicates: 1,
      invalid: [{ line: 3, error: expect.stringMatching(/^seed: expected/) }],
      warnings: [expect.stringContaining('did you mean "num_inference_steps"')],
      estimatedCredits: 8,
    });
    expect(Object.keys((parsed.invalid as object[])[0]!)).toEqual(["line", "error"]);
  });

  it("invalid rows are reported as FILE:LINE after a multi-line quoted field", async () => {
    const file = await fx.files.write(
      "lines.csv",
      'prompt,seed\r\n"a poem\r\nover\r\nthree lines",1\r\n"fine",2\r\n"bad seed",abc\r\n',
    );
    const summary = await fx.run({ file, batch: "lines" });
    expect(summary.out).toContain(`${file}:6: seed: `);
    expect(summary.errors[0]).toMatchObject({ line: 6, field: "seed" });
  });

  it("lists the first 20 errors, counts the rest, and warns about a misspelt column once", async () => {
    const rows = Array.from({ length: 30 }, (_, i) => `p${i},abc,square`);
    const file = await fx.files.write("many.csv", csv("prompt,seed,image-size", ...rows, "ok,1,square"));
    const summary = await fx.run({ file, batch: "many" });
    expect(summary).toMatchObject({ invalidRows: 30, moreErrors: 10, exitCode: 0 });
    expect(summary.errors).toHaveLength(20);
    expect(summary.out).toContain("and 10 more errors");
    expect(summary.warnings).toEqual([expect.stringContaining('"image-size"')]);
    expect(summary.out.match(/image-size/g)).toHaveLength(1);
  });

  it("the human summary names the batch and the commands to run next", async () => {
    const file = await fx.files.write("next.csv", csv("prompt", "a"));
    const { out } = await fx.run({ file, batch: "nxt" });
    expect(out).toMatch(/^Batch:\s+nxt {2}\(from .*next\.csv, csv\)$/m);
    expect(out).toContain("kie-batch worker");
    expect(out).toContain("kie-batch status nxt --watch");
  });
});

describe("stdin", () => {
  it("is spooled, needs --batch, and its format is guessed from the content", async () => {
    const summary = await fx.run(
      { file: "-", batch: "piped" },
      { stdin: stdinOf('{"id":"a","prompt":"x"}\n\n{"id":"b","prompt":"y"}\n'), tmpDir: fx.files.dir },
    );
    expect(summary).toMatchObject({ batch: "piped", format: "jsonl", total: 2, enqueued: 2 });
    expect((await fx.ledger.getBatch("piped"))?.file).toBe("(stdin)");
    // The spooled stdin and the spool of valid rows are gone.
    const { readdir } = await import("node:fs/promises");
    expect((await readdir(fx.files.dir)).filter((name) => name.startsWith("kie-batch-"))).toEqual([]);
  });

  it("without --batch is a usage error naming the flag", async () => {
    const error = await thrownBy(() => fx.run({ file: "-" }, { stdin: stdinOf("prompt\na\n") }));
    expect(error).toBeInstanceOf(ManifestOptionError);
    expect((error as Error).message).toContain("pass --batch NAME");
  });

  it("reports row errors at stdin's line numbers, as -:LINE", async () => {
    const summary = await fx.run(
      { file: "-", batch: "p2", format: "csv" },
      { stdin: stdinOf("prompt,seed\na,1\nb,zz\n") },
    );
    expect(summary.out).toContain("-:3: seed: ");
  });
});
