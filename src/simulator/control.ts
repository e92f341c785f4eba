/**
 * `/__sim/*`: steering and stats over HTTP, for tests that drive the simulator from another
 * process (spawned CLIs). Not part of the KIE API: no auth, no faults, no maintenance.
 */
import { z } from "zod";
import type { SimulatorEngine } from "./engine.js";

const faultSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("code"),
    code: z.number().int(),
    msg: z.string().optional(),
    httpStatus: z.number().int().optional(),
  }),
  z.object({ kind: z.literal("http"), status: z.number().int() }),
  z.object({ kind: z.literal("reset"), afterCreate: z.boolean().optional() }),
  z.object({ kind: z.literal("delay"), ms: z.number().nonnegative() }),
  z.object({ kind: z.literal("hang") }),
]);

const controlSchema = z.object({
  maintenance: z.boolean().optional(),
  credits: z.number().nonnegative().optional(),
  completeAll: z.boolean().optional(),
  /** null clears a forced outcome. */
  nextOutcome: z.enum(["success", "fail", "creation_failed"]).nullable().optional(),
  expireFiles: z.string().optional(),
  /** A task whose original result URLs answer this status (null: work again). */
  breakFiles: z
    .object({ taskId: z.string().min(1), status: z.number().int().min(500).max(599).nullable() })
    .optional(),
  /** Every uploaded file expires now. */
  expireUploads: z.boolean().optional(),
  /** Caps (433) or uncaps one key's creates. */
  capKey: z.object({ key: z.string().min(1), capped: z.boolean() }).optional(),
  faults: z
    .object({
      endpoint: z.enum(["submit", "status", "credit", "download-url", "image", "upload"]),
      faults: z.array(faultSchema),
    })
    .optional(),
});

/** Applies a control request; returns an error message when the body does not parse. */
export function applyControl(engine: SimulatorEngine, body: unknown): string | undefined {
  const parsed = controlSchema.safeParse(body ?? {});
  if (!parsed.success) return z.prettifyError(parsed.error);
  const control = parsed.data;
  if (control.maintenance !== undefined) engine.maintenance = control.maintenance;
  if (control.credits !== undefined) engine.setCredits(control.credits);
  if (control.nextOutcome !== undefined) engine.setNextOutcome(control.nextOutcome ?? undefined);
  if (control.expireFiles !== undefined) engine.expireFiles(control.expireFiles);
  if (control.breakFiles)
    engine.breakFiles(control.breakFiles.taskId, control.breakFiles.status ?? undefined);
  if (control.expireUploads) engine.uploads.expireAll();
  if (control.capKey) engine.capKey(control.capKey.key, control.capKey.capped);
  if (control.faults) engine.faults.inject(control.faults.endpoint, control.faults.faults);
  if (control.completeAll) engine.completeAll();
  return undefined;
}
