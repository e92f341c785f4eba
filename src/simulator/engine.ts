/**
 * The simulated KIE account: tasks, credits, the rate window, files and callbacks, answering
 * API operations as `{httpStatus, body}` without knowing about HTTP. The server adds routing,
 * auth and faults around it.
 */
import { DEFAULT_PRICES, priceOf } from "../kie/prices.js";
import { LIMITS } from "../kie/types.js";
import { CallbackSweep } from "./callback-sweep.js";
import { Drawing } from "./drawing.js";
import { CODE_MESSAGES, FaultPlan } from "./faults.js";
import { FileLinks, type FileRef } from "./file-links.js";
import type { ImageFile } from "./image-file.js";
import { imageFile } from "./images.js";
import { fetchInputImage } from "./input-image.js";
import { DOWNLOAD_URL_TTL_MS, type ResolvedOptions } from "./options.js";
import { parseJobsCreate, parseQwenCreate, requestHash } from "./params.js";
import { createRandom, type Random } from "./random.js";
import { SlidingWindow } from "./rate-window.js";
import { callbackBody, jobsRecord, qwenRecord, type TaskView } from "./records.js";
import { type Counters, createCounters, recordCreate, snapshotStats } from "./stats.js";
import { type Outcome, type TaskEntry, TaskStore } from "./tasks.js";
import type { SimTask, SimulatorStats } from "./types.js";
import { UploadStore } from "./uploads.js";

export interface ApiAnswer {
  httpStatus: number;
  body: Record<string, unknown>;
}

export function answer(code: number, msg: string, httpStatus = 200): ApiAnswer {
  return { httpStatus, body: { code, msg } };
}

function ok(data: unknown): ApiAnswer {
  return { httpStatus: 200, body: { code: 200, msg: "success", data } };
}

export class SimulatorEngine {
  readonly counters: Counters = createCounters();
  readonly random: Random;
  readonly faults: FaultPlan;
  maintenance = false;
  private credits: number;
  private nextOutcome: Outcome | undefined;
  private readonly tasks: TaskStore;
  private readonly window: SlidingWindow;
  private readonly links: FileLinks;
  private readonly callbacks: CallbackSweep;
  /** Keys whose creates answer 433 (capKey). */
  private readonly capped = new Set<string>();
  /** The account of each task (with `apiKeys`, only its account's keys see it). */
  private readonly taskAccounts = new Map<string, string>();
  private readonly createsByKey = new Map<string, number>();
  private readonly now = () => Date.now();
  /** Pictures are drawn on a thread: the server's own thread stays free to stamp creates as they come. */
  private readonly drawing = new Drawing();
  /** KIE's File Upload API: files kept for a day (simulated), served at their downloadUrl. */
  readonly uploads: UploadStore;

  constructor(
    private readonly options: ResolvedOptions,
    port: number,
  ) {
    this.random = createRandom(options.randomSeed);
    this.faults = new FaultPlan(this.random, options.faultRate);
    this.credits = options.credits;
    this.tasks = new TaskStore(options, this.random, this.now);
    this.window = new SlidingWindow(options.rateLimit.limit, options.rateLimit.windowMs);
    this.links = new FileLinks(options.publicHost, port);
    this.uploads = new UploadStore({
      base: () => `http://${options.publicHost}:${port}`,
      ttlMs: Math.round(options.uploadTtlMs / options.timeScale),
      maxBytes: options.uploadMaxBytes,
      now: this.now,
    });
    this.callbacks = new CallbackSweep(this.counters, options.webhookHmacKey, this.now, (task) =>
      callbackBody(this.view(task), options.reportCreditsConsumed),
    );
  }

  /** A bearer key the simulator accepts: `apiKey` and `apiKeys`, or any when neither is set. */
  accepts(key: string): boolean {
    const { apiKey, apiKeys } = this.options;
    if (apiKey === undefined && apiKeys === undefined) return true;
    return key === apiKey || (apiKeys?.includes(key) ?? false);
  }

  capKey(key: string, capped: boolean): void {
    if (capped) this.capped.add(key);
    else this.capped.delete(key);
  }

  private accountOf(key: string): string {
    return this.options.accounts?.[key] ?? key;
  }

  /** A jobs create whose model takes an input image fetches it first: 422 when it cannot. */
  async createFetchingInput(apiKey: string, body: unknown): Promise<ApiAnswer> {
    const input = await fetchInputImage(body, this.uploads, LIMITS.inputImageMaxBytes);
    if (input?.ok === false) return answer(422, input.msg);
    return this.create("jobs", apiKey, body, input?.sha256);
  }

  create(flavor: "qwen" | "jobs", apiKey: string, body: unknown, inputSha256?: string): ApiAnswer {
    const parsed = flavor === "qwen" ? parseQwenCreate(body) : parseJobsCreate(body);
    if (!parsed.ok) return answer(422, parsed.msg);
    const { params, callBackUrl } = parsed.value;
    if (this.capped.has(apiKey)) return answer(433, CODE_MESSAGES[433]!);
    const account = this.accountOf(apiKey);
    const now = this.now();
    if (!this.window.allows(account, now)) {
      this.counters.rateLimited++;
      return answer(429, "Rate limited: too many requests", this.options.rateLimitHttpStatus ? 429 : 200);
    }
    const cost = priceOf(DEFAULT_PRICES, params);
    if (this.credits < cost) return answer(402, "Credits insufficient");

    this.window.record(account, now);
    this.createsByKey.set(apiKey, (this.createsByKey.get(apiKey) ?? 0) + 1);
    this.credits -= cost;
    const task = this.tasks.create({
      flavor,
      params,
      rawBody: body,
      callBackUrl,
      credits: cost,
      outcome: this.drawOutcome(),
      ...(inputSha256 === undefined ? {} : { inputSha256 }),
    });
    this.taskAccounts.set(task.taskId, account);
    recordCreate(this.counters, {
      taskId: task.taskId,
      requestHash: requestHash(params),
      credits: cost,
      at: now,
    });
    if (task.callBackUrl !== undefined) this.callbacks.add(task);
    return ok({ taskId: task.taskId });
  }

  /** Either flavour reads any task: the id space is shared, as one account's is. */
  status(flavor: "qwen" | "jobs", taskId: string | null, key?: string): ApiAnswer {
    if (!taskId) return answer(400, "taskId is required");
    const task = this.isForeign(taskId, key) ? undefined : this.tasks.get(taskId);
    // Unknown and just-created tasks look alike, as on the real API.
    if (!task || this.now() < task.visibleAt) return answer(422, "recordInfo is null");
    const view = this.view(task);
    return ok(flavor === "qwen" ? qwenRecord(view) : jobsRecord(view, this.options.reportCreditsConsumed));
  }

  /** Another account's task is unknown to this key, as on the real API (with `apiKeys` given). */
  private isForeign(taskId: string, key: string | undefined): boolean {
    return (
      this.options.apiKeys !== undefined &&
      key !== undefined &&
      this.taskAccounts.get(taskId) !== this.accountOf(key)
    );
  }

  credit(): ApiAnswer {
    return ok(this.credits);
  }

  /**
   * A fresh link for one of this simulator's result URLs. Bytes are drawn again on every
   * download, never deleted, so a fresh link works for any succeeded task: also after its
   * original URL expired or expireFiles() cut it short (the case download-url exists for).
   */
  downloadUrl(body: unknown, key?: string): ApiAnswer {
    const url = (body as { url?: unknown } | null)?.url;
    if (typeof url !== "string" || url === "") return answer(422, "url is required");
    const ref = this.links.parseUrl(url);
    if (!ref) return answer(422, "url is not a result url of this service");
    // Another account's file is unknown to this key, as a task is (status).
    if (this.isForeign(ref.taskId, key) || !this.resolveFile(ref)) return answer(422, "file not found");
    const expires = this.now() + Math.round(DOWNLOAD_URL_TTL_MS / this.options.timeScale);
    return ok(this.links.signed(ref, expires));
  }

  /** The file a /files/ path names, or undefined (answered 404) when unknown, unfinished or expired. */
  async file(pathname: string, query: URLSearchParams): Promise<ImageFile | undefined> {
    const ref = this.links.parse(pathname, query);
    if (!ref) return undefined;
    const task = this.resolveFile(ref);
    if (!task) return undefined;
    const now = this.now();
    const alive = ref.signed ? ref.signed.valid && now < ref.signed.expires : now < task.filesExpireAt;
    if (!alive) return undefined;
    // An image-to-image or edit result is drawn from its input's bytes too: another input, another image.
    const prompt =
      task.inputSha256 === undefined
        ? task.params.prompt
        : `${task.params.prompt}\n[input ${task.inputSha256}]`;
    const spec = { prompt, seed: task.imageSeed, index: ref.index, format: ref.ext };
    const parts = await this.drawing.draw(
      task.params.image_size ? { ...spec, size: task.params.image_size } : spec,
    );
    return imageFile(parts, ref.ext, this.options.imagePadBytes);
  }

  stats(): SimulatorStats {
    const stats = snapshotStats(this.counters, {
      inFlight: this.tasks.inFlight(),
      maxInFlight: this.tasks.maxInFlight,
      creditsLeft: this.credits,
    });
    return { ...stats, createsByKey: Object.fromEntries(this.createsByKey), uploads: this.uploads.count };
  }

  task(taskId: string): SimTask | undefined {
    const task = this.tasks.get(taskId);
    return task && this.tasks.snapshot(task, this.imageUrls(task));
  }

  allTasks(): SimTask[] {
    return this.tasks.all().map((task) => this.tasks.snapshot(task, this.imageUrls(task)));
  }

  setCredits(credits: number): void {
    this.credits = credits;
  }

  setNextOutcome(outcome: Outcome | undefined): void {
    this.nextOutcome = outcome;
  }

  /**
   * The status a file request meets instead of its bytes: a task's original URL while breakFiles()
   * holds (a broken file host); download-url links are served from elsewhere and keep working.
   */
  fileFault(pathname: string, query: URLSearchParams): number | undefined {
    const ref = this.links.parse(pathname, query);
    if (!ref || ref.signed) return undefined;
    return this.tasks.get(ref.taskId)?.filesBrokenWith;
  }

  /** Original URLs answer `status` from now on (undefined: they work again); download-url links keep working. */
  breakFiles(taskId: string, status: number | undefined): void {
    const task = this.tasks.get(taskId);
    if (task) task.filesBrokenWith = status;
  }

  /** Original URLs stop now; download-url links keep working (see downloadUrl). */
  expireFiles(taskId: string): void {
    const task = this.tasks.get(taskId);
    if (task) task.filesExpireAt = Math.min(task.filesExpireAt, this.now());
  }

  completeAll(): void {
    this.tasks.completeAll();
    this.callbacks.sweep();
  }

  async close(): Promise<void> {
    await Promise.all([this.callbacks.close(), this.drawing.close()]);
  }

  private drawOutcome(): Outcome {
    if (this.nextOutcome) return this.nextOutcome;
    if (!this.random.chance(this.options.failureRate)) return "success";
    return this.random.chance(this.options.creationFailureRate) ? "creation_failed" : "fail";
  }

  private imageUrls(task: TaskEntry): string[] {
    const ext = task.params.output_format ?? "png";
    return Array.from({ length: this.options.imagesPerTask }, (_, index) =>
      this.links.original({ taskId: task.taskId, index, ext }),
    );
  }

  private view(task: TaskEntry): TaskView {
    const now = this.now();
    return {
      task,
      phase: this.tasks.phase(task, now),
      imageUrls: this.imageUrls(task),
      updatedAt: this.tasks.updatedAt(task, now),
      timeScale: this.options.timeScale,
    };
  }

  /** The task behind a file reference when that file exists (task succeeded, index and format right). */
  private resolveFile(ref: FileRef): TaskEntry | undefined {
    const task = this.tasks.get(ref.taskId);
    if (!task || this.tasks.phase(task) !== "success") return undefined;
    if (ref.index >= this.options.imagesPerTask || ref.ext !== (task.params.output_format ?? "png"))
      return undefined;
    return task;
  }
}
