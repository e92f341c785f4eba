/**
 * What status calls and callbacks put on the wire, per flavour. Times on the wire are real
 * epoch ms (a client compares them with its own clock); `costTime` alone is simulated ms, the
 * generation time the model "took", so it reads like the real API's whatever the time scale.
 * Fields that do not apply yet are null, as the market API documents for failCode.
 */
import { MARKET_MODELS } from "../kie/types.js";
import type { Phase, TaskEntry } from "./tasks.js";

export interface TaskView {
  task: TaskEntry;
  phase: Phase;
  imageUrls: string[];
  updatedAt: number;
  timeScale: number;
}

const FAILURES = {
  fail: { code: "501", msg: "Image generation failed (simulated)" },
  creation_failed: { code: "500", msg: "Task creation failed (simulated)" },
} as const;

function isFinished(phase: Phase): boolean {
  return phase === "success" || phase === "fail" || phase === "creation_failed";
}

function failure(phase: Phase): { code: string; msg: string } | undefined {
  return phase === "fail" || phase === "creation_failed" ? FAILURES[phase] : undefined;
}

/** `GET /api/v1/qwen/record-info`: successFlag 0 generating, 1 success, 2 failed, 3 creation failed. */
export function qwenRecord({ task, phase, imageUrls }: TaskView): Record<string, unknown> {
  const successFlag = phase === "success" ? 1 : phase === "fail" ? 2 : phase === "creation_failed" ? 3 : 0;
  return {
    taskId: task.taskId,
    successFlag,
    imageUrl: phase === "success" ? (imageUrls[0] ?? null) : null,
    errorMessage: failure(phase)?.msg ?? null,
    createTime: new Date(task.createdAt).toISOString(),
    completeTime: isFinished(phase) ? new Date(task.completesAt).toISOString() : null,
  };
}

/** `GET /api/v1/jobs/recordInfo`: `resultJson` is a JSON string, as the market API sends it. */
export function jobsRecord(view: TaskView, reportCreditsConsumed: boolean): Record<string, unknown> {
  const { task, phase, imageUrls, updatedAt, timeScale } = view;
  const finished = isFinished(phase);
  const failed = failure(phase);
  const record: Record<string, unknown> = {
    taskId: task.taskId,
    model: MARKET_MODELS[task.params.model ?? "text-to-image"],
    state: phase === "creation_failed" ? "fail" : phase,
    param: JSON.stringify(task.rawBody),
    resultJson: phase === "success" ? JSON.stringify({ resultUrls: imageUrls }) : null,
    failCode: failed?.code ?? null,
    failMsg: failed?.msg ?? null,
    costTime: finished ? Math.round((task.completesAt - task.createdAt) * timeScale) : null,
    createTime: task.createdAt,
    updateTime: updatedAt,
    completeTime: finished ? task.completesAt : null,
  };
  if (reportCreditsConsumed) record.creditsConsumed = task.credits;
  return record;
}

/**
 * The market callback body. A task created through the qwen flavour also gets the qwen fields,
 * so a receiver written for either flavour finds what it expects.
 */
export function callbackBody(view: TaskView, reportCreditsConsumed: boolean): Record<string, unknown> {
  const data = jobsRecord(view, reportCreditsConsumed);
  if (view.task.flavor === "qwen") {
    const qwen = qwenRecord(view);
    data.successFlag = qwen.successFlag;
    data.imageUrl = qwen.imageUrl;
    data.errorMessage = qwen.errorMessage;
  }
  const ok = view.phase === "success";
  return { code: ok ? 200 : 501, msg: ok ? "success" : (failure(view.phase)?.msg ?? "failed"), data };
}
