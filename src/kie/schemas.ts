/**
 * zod schemas for every KIE answer. They are lenient on purpose: extra fields are dropped, nulls
 * are accepted wherever a field is optional, and numbers that arrive as numeric strings are
 * read as numbers. What they do insist on is what a decision depends on: a task id from a
 * submit, a `successFlag` or `state` from a status call, a number from the balance call.
 */
import { z } from "zod";

/** "42" -> 42; anything else untouched (so the inner schema reports it). */
function numericStringToNumber(value: unknown): unknown {
  if (typeof value === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  return value;
}

const numberLike = z.preprocess(numericStringToNumber, z.number());
const integerLike = z.preprocess(numericStringToNumber, z.number().int());
const idLike = z.union([z.string().min(1), z.number()]).transform(String);
/** ISO string, unix ms (number or numeric string); converted to epoch ms in normalize.ts. */
const timestampLike = z.union([z.string(), z.number()]);

/** `{code, msg | message, data}`: every wrapped answer. */
export const envelopeSchema = z.object({
  code: integerLike,
  msg: z.string().nullish(),
  message: z.string().nullish(),
  data: z.unknown().optional(),
});

/** The `data` of a submit answer (both flavours). */
export const submitDataSchema = z.object({ taskId: idLike });

/** The seed's record: `successFlag` 0 generating, 1 success, 2 failed, 3 creation failed. */
const qwenRecordSchema = z.object({
  taskId: idLike.nullish(),
  successFlag: z.preprocess(
    numericStringToNumber,
    z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)]),
  ),
  imageUrl: z.union([z.string(), z.array(z.string())]).nullish(),
  errorMessage: z.string().nullish(),
  createTime: timestampLike.nullish(),
  completeTime: timestampLike.nullish(),
  creditsConsumed: numberLike.nullish(),
});
export type QwenRecord = z.output<typeof qwenRecordSchema>;

const JOB_STATES = ["waiting", "queuing", "generating", "success", "fail"] as const;

const resultUrlsSchema = z.object({ resultUrls: z.array(z.unknown()).nullish() });

/**
 * `resultJson` is documented as a JSON *string* (`"{\"resultUrls\":[...]}"`); an object is
 * accepted too. Whatever cannot be read becomes `undefined`: a failed task's resultJson does not
 * matter, and a successful task without URLs is refused by normalize.ts with a clear message.
 */
const resultJsonSchema = z
  .unknown()
  .optional()
  .transform((value): { resultUrls: string[] } | undefined => {
    let parsed: unknown = value;
    if (typeof value === "string") {
      if (value.trim() === "") return undefined;
      try {
        parsed = JSON.parse(value);
      } catch {
        return undefined;
      }
    }
    const result = resultUrlsSchema.safeParse(parsed);
    if (!result.success) return undefined;
    const urls = (result.data.resultUrls ?? []).filter((url): url is string => typeof url === "string");
    return { resultUrls: urls };
  });

/** The market (jobs) record. */
const jobsRecordSchema = z.object({
  taskId: idLike.nullish(),
  model: z.string().nullish(),
  state: z.preprocess(
    (value) => (typeof value === "string" ? value.trim().toLowerCase() : value),
    z.enum(JOB_STATES),
  ),
  resultJson: resultJsonSchema,
  failCode: z.union([z.string(), z.number()]).nullish(),
  failMsg: z.string().nullish(),
  costTime: numberLike.nullish(),
  createTime: timestampLike.nullish(),
  updateTime: timestampLike.nullish(),
  completeTime: timestampLike.nullish(),
  creditsConsumed: numberLike.nullish(),
});
export type JobsRecord = z.output<typeof jobsRecordSchema>;

export type StatusRecord = JobsRecord | QwenRecord;

/**
 * Either flavour's record, whichever endpoint answered: a `state` field marks a jobs record,
 * anything else is read as a qwen one. (Chosen by hand rather than with z.union so that a bad
 * record is reported with the issues of its own flavour, not "invalid union".)
 */
export const statusRecordSchema: z.ZodType<StatusRecord> = z.unknown().transform((value, ctx) => {
  const isJobs = typeof value === "object" && value !== null && "state" in value;
  const result = isJobs ? jobsRecordSchema.safeParse(value) : qwenRecordSchema.safeParse(value);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    ctx.addIssue({ code: "custom", message: issue.message, path: issue.path, input: value });
  }
  return z.NEVER;
});

/** `GET /api/v1/chat/credit` data: the remaining credits. */
export const creditDataSchema = numberLike;

/** `POST /api/v1/common/download-url` data: a direct URL valid about 20 minutes. */
export const downloadUrlDataSchema = z.string().min(1);

export function isJobsRecord(record: StatusRecord): record is JobsRecord {
  return "state" in record;
}
