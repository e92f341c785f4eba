import { z } from "zod";
import { POLL_BACKOFF } from "../core/backoff.js";
import { ValueError } from "../core/errors.js";
import { parseFailpoints } from "../core/failpoints.js";
import {
  parseCount,
  parseDuration,
  parsePositiveNumber,
  parseRate,
  parseServiceUrl,
  parseSize,
  parseSwitch,
} from "../core/values.js";
import { checkClusterNodes } from "./redis-nodes.js";

/**
 * One schema for every environment variable. Flags of the CLI are mapped onto these names before
 * validation, so a value is checked the same way whichever way it arrives.
 */

/**
 * A variable read by one of core/values' parsers: its ValueError becomes the issue, whose message
 * loadConfig prefixes with the variable's name. `expected` replaces the parser's own wording.
 */
const parsed = <T>(parse: (text: string) => T, expected?: string) =>
  z.string().transform((value, ctx) => {
    try {
      return parse(value);
    } catch (error) {
      if (!(error instanceof ValueError)) throw error;
      const message =
        expected === undefined ? error.message : `expected ${expected}, got ${JSON.stringify(value)}`;
      ctx.addIssue({ code: "custom", message });
      return z.NEVER;
    }
  });

const duration = (example: string) => parsed(parseDuration, `a duration like ${example}`);
const positiveInt = (what: string) => parsed((text) => parseCount(text, what));
/** A whole number of at least 1 (`name` is the setting, named in the error). */
const atLeastOne = (name: string) =>
  parsed((text) => {
    const n = parseCount(text, "a whole number >= 1");
    if (n < 1) throw new ValueError(name, "below 1");
    return n;
  }, "a whole number >= 1");
const positiveNumber = (what: string) => parsed((text) => parsePositiveNumber(text, what));
const url = (what: string) => parsed((text) => parseServiceUrl(text, what));
const bool = parsed(parseSwitch);

/** KIE's documented lifetime of a finished task's files (the read model warns against it too). */
export const FILE_LIFETIME_DEFAULT_MS = 14 * 86_400_000;

/** Free bytes a folder store's probe asks for before a full disk's pause lifts: a few images per archive slot of a fleet. */
const ARCHIVE_MIN_FREE_DEFAULT = 256 * 1_048_576;

/** How often one worker probes a store that refused (PAUSE_POLICY["store-unavailable"]'s interval). */
const STORE_PROBE_DEFAULT_MS = 60_000;

/** How often the fleet's reconciler sweeps for rows without a job (one worker, by lease). */
const RECONCILE_EVERY_DEFAULT_MS = 5 * 60_000;

/**
 * KIE_SUBMIT_WINDOW: rows of a batch given their submit job at a time (the rest wait in the ledger
 * with no job: Redis bytes of a million-row batch, issue 10). 500 is more than any fleet submits
 * while the window refills (it is refilled at half empty; one account creates 2 rows a second).
 */
export const SUBMIT_WINDOW_DEFAULT = 500;

const QUEUE_PREFIX_RE = /^[A-Za-z0-9._-]{1,64}$/;

export const envSchema = z.object({
  REDIS_URL: url("a redis:// or rediss:// URL").default("redis://127.0.0.1:6379"),
  /** Seed nodes of a Redis Cluster (`host:port,...`, or URLs as REDIS_URL): every process uses the cluster instead of REDIS_URL. */
  REDIS_CLUSTER_NODES: parsed(checkClusterNodes).optional(),
  /** Redis's password, when neither REDIS_URL nor the cluster's node URLs carry one. */
  REDIS_PASSWORD: z.string().min(1).optional(),
  KIE_QUEUE_PREFIX: z
    .string()
    .regex(QUEUE_PREFIX_RE, "expected 1-64 characters of A-Z a-z 0-9 . _ - (the code adds the {hash tag})")
    .default("kie"),
  KIE_API_KEY: z.string().min(1, "expected a non-empty API key").optional(),
  /** More keys: comma-separated, or `@file` (one a line), each `key` or `key=account` (config/api-keys.ts). */
  KIE_API_KEYS: z.string().min(1).optional(),
  /** The account of each key, in order (keys of one account share its rate window). */
  KIE_ACCOUNTS: z.string().min(1).optional(),
  KIE_BASE_URL: url("an http(s) URL").default("https://api.kie.ai"),
  KIE_API_FLAVOR: z.enum(["qwen", "jobs"], { message: 'expected "qwen" or "jobs"' }).default("qwen"),
  /** KIE's File Upload API (local input images of image-to-image and edit rows go there first). */
  KIE_UPLOAD_BASE_URL: url("an http(s) URL").default("https://kieai.redpandaai.co"),
  /** Prices per model and acceleration over the built-in table, e.g. "edit=5,image-to-image:high=3" (kie/prices.ts). */
  KIE_PRICES: z.string().optional(),
  KIE_RATE_LIMIT: parsed(parseRate, "<count>/<window> like 20/10s").default({ limit: 20, windowMs: 10_000 }),
  /**
   * How long each create slot is held past the window (KIE counts a request when it arrives, later
   * than its slot was taken): a fixed margin instead of CREATE_MARGIN (2.5% of the window, 100-250 ms),
   * for a host or network whose delays are longer than that.
   */
  KIE_RATE_MARGIN: duration('"300ms"').optional(),
  /**
   * Status calls per second per account. KIE documents no limit (only: no faster than every 2-3 s
   * per task); 20/s covers 2 creates/s (20 per 10 s) of generations up to ~15 min on the default
   * schedule (core/backoff.ts: POLL_BACKOFF), and calls beyond it queue at the limiter.
   */
  KIE_POLL_RATE: positiveNumber("status calls per second, a number > 0").default(20),
  KIE_MAX_IN_FLIGHT: positiveInt("a whole number (0: no cap)").default(0),
  /** The first status check after a submit (polling mode); the whole ladder scales with it. */
  KIE_POLL_INTERVAL: duration('"20s"').default(POLL_BACKOFF.firstMs),
  KIE_MAX_WAIT: duration('"30m"').default(30 * 60_000),
  KIE_MAX_RESUBMITS: positiveInt("a whole number").default(1),
  KIE_SUBMIT_ATTEMPTS: atLeastOne("KIE_SUBMIT_ATTEMPTS").default(8),
  KIE_SUBMIT_WINDOW: atLeastOne("KIE_SUBMIT_WINDOW").default(SUBMIT_WINDOW_DEFAULT),
  KIE_LOCK_MS: positiveInt("milliseconds, a whole number").default(30_000),
  KIE_LEDGER_TTL: duration('"30d"').default(30 * 86_400_000),
  /** A status call may not know a task this young yet ("recordInfo is null"): not a failure. */
  KIE_RECORD_LAG_GRACE: duration('"60s"').default(60_000),
  /** How long KIE keeps a finished task's files: an archive later than this cannot succeed. */
  KIE_FILE_LIFETIME: duration('"14d"').default(FILE_LIFETIME_DEFAULT_MS),
  /** The archive store refused (credential, permission, missing bucket): one worker probes it this often. */
  KIE_STORE_PROBE_INTERVAL: duration('"60s"').default(STORE_PROBE_DEFAULT_MS),
  /** A full disk's pause lasts until this much is free where a folder store writes (probe.ts). */
  KIE_ARCHIVE_MIN_FREE: parsed(parseSize, 'a size like "256MiB"').default(ARCHIVE_MIN_FREE_DEFAULT),
  /** The reconciler's period: rows whose state has no job behind it get it back within about this. */
  KIE_RECONCILE_EVERY: duration('"5m"').default(RECONCILE_EVERY_DEFAULT_MS),
  /**
   * A row younger than this in its state is left to the stage that just moved it (its job may be
   * on its way); an archived row is frozen (ledger/freeze.ts) once it has not changed for this long.
   */
  KIE_RECONCILE_SETTLE: duration('"60s"').default(60_000),
  /** How long a worker's shutdown may take before hung jobs are dropped (released by their lock). */
  KIE_SHUTDOWN_DEADLINE: duration('"25s"').default(25_000),
  /**
   * Reuse across batches (worker/reuse.ts): a seeded row whose request was archived before is
   * copied from there instead of created. "off" turns it off for the deployment (no lookups, no
   * index writes).
   */
  KIE_REUSE: bool.default(true),
  /** How long a result index entry lives after the last archive of its request. */
  KIE_REUSE_TTL: duration('"30d"').default(30 * 86_400_000),
  /** How long a command waits for Redis's first answer before it exits 1. */
  REDIS_CONNECT_TIMEOUT: duration('"5s"').default(5_000),
  LOG_LEVEL: z
    .enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"], {
      message: "expected trace, debug, info, warn, error, fatal or silent",
    })
    .default("info"),
  KIE_CALLBACK_URL: url("an http(s) URL").optional(),
  KIE_WEBHOOK_HMAC_KEY: z.string().min(1).optional(),
  /** The dashboard's token (`--auth-token` wins): every page and API call then needs it. */
  KIE_DASHBOARD_TOKEN: z.string().min(16, "at least 16 characters").optional(),
  KIE_DOWNLOAD_HOSTS: z
    .string()
    .transform((value) =>
      value
        .split(",")
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    )
    .default([]),
  KIE_ALERT_WEBHOOK_URL: url("an http(s) URL").optional(),
  S3_BUCKET: z.string().min(1).optional(),
  S3_PREFIX: z.string().default(""),
  S3_ENDPOINT: url("an http(s) URL").optional(),
  S3_REGION: z.string().min(1).default("us-east-1"),
  S3_FORCE_PATH_STYLE: bool.default(false),
  ARCHIVE_DIR: z.string().min(1).optional(),
  /** Tests only: crash the worker at named points, e.g. "submit.after-create=exit@1" (core/failpoints.ts). */
  KIE_FAILPOINTS: parsed(parseFailpoints).optional(),
});

export type Config = z.output<typeof envSchema>;

/** Names whose values never appear in output. */
export const SECRET_KEYS = [
  "KIE_API_KEY",
  "REDIS_PASSWORD",
  "KIE_API_KEYS",
  "KIE_WEBHOOK_HMAC_KEY",
  "KIE_DASHBOARD_TOKEN",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_ACCESS_KEY_ID",
] as const;
