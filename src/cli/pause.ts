import { hostname, userInfo } from "node:os";
import { pauseSubmissions, resumeSubmissions } from "../commands/pause.js";
import { apiKeysOf, type Config } from "../config/index.js";
import { registerAccount, requireAccounts } from "../report/accounts.js";
import { type OpsContext, withOps } from "./ops-context.js";

export interface PauseFlags {
  reason?: string;
}

/** The configured keys' accounts (registered for the prefix, so `status` shows them), else every registered one. */
async function pausesOf(ctx: OpsContext) {
  const prefix = ctx.config.KIE_QUEUE_PREFIX;
  const keys = apiKeysOf(ctx.config).map((entry) => entry.key);
  const ids = await requireAccounts(ctx.redis, prefix, keys);
  if (keys.length > 0) for (const id of ids) await registerAccount(ctx.redis, prefix, id);
  return ctx.pauses(ids);
}

/** `kie-batch pause [--reason TEXT]`: stops new submissions fleet-wide until `resume`. */
export async function runPauseCommand(config: Config, flags: PauseFlags): Promise<void> {
  await withOps(config, async (ctx) =>
    pauseSubmissions(
      { accounts: await pausesOf(ctx), out: process.stdout, queuePrefix: config.KIE_QUEUE_PREFIX },
      flags.reason?.trim() || defaultReason(),
    ),
  );
}

/** `kie-batch resume`: lifts any pause, automatic ones (401, 402, 433) included. */
export async function runResumeCommand(config: Config): Promise<void> {
  await withOps(config, async (ctx) =>
    resumeSubmissions({
      accounts: await pausesOf(ctx),
      out: process.stdout,
      queuePrefix: config.KIE_QUEUE_PREFIX,
      stageQueues: ctx.queues().queues,
    }),
  );
}

function defaultReason(): string {
  let who = "an operator";
  try {
    who = `${userInfo().username}@${hostname()}`;
  } catch {
    // No user database entry (some containers): keep the generic name.
  }
  return `paused by ${who} with \`kie-batch pause\``;
}
