/**
 * A dashboard in-process against a real batch on the real Redis: a unique prefix, one batch with
 * rows in every state (two failed with hostile-looking text, one finished 30 h ago and still not
 * archived), a finished second batch, a job waiting in the submit queue, and a paused account.
 * Shared by the HTTP test and the browser test; `close` leaves nothing behind.
 */

import { buildPauseControls } from "../../src/app/parts.js";
import { type Dashboard, startDashboard } from "../../src/dashboard/server.js";
import { accountId } from "../../src/fleet/account.js";
import { FleetPause } from "../../src/fleet/index.js";
import { registerAccount } from "../../src/report/accounts.js";
import { readFleetState } from "../../src/report/fleet-state.js";
import { moveRow, newRow, type OpsFixture, opsFixture } from "../integration/ops-helpers.js";
import { deleteAccountKeys, fakeApiKey } from "./fleet-redis.js";

export const BATCH = "spring-catalog";
export const OTHER = "autumn-done";
export const HOSTILE_PROMPT = '<script>alert("prompt")</script> a red fox';
export const HOSTILE_ERROR = "<img src=x onerror=alert(1)> content policy: the prompt was refused";
export const PLAIN_ERROR = "generation failed: upstream timeout (code 500)";
export const PAUSE_REASON = "<b>maintenance</b> until 14:00";
/** How long ago the unarchived image finished. */
const UNARCHIVED_AGE_MS = 30 * 3_600_000;

export interface DashboardFixture {
  fx: OpsFixture;
  dashboard: Dashboard;
  accountId: string;
  close(): Promise<void>;
}

export async function startDashboardFixture(
  options: { refreshSeconds?: number } = {},
): Promise<DashboardFixture> {
  const fx = opsFixture();
  const apiKey = fakeApiKey();
  const account = accountId(apiKey);
  try {
    const ids = ["a1", "a2", "a3", "old1", "g1", "s1", "f1", "f2", "c1", "q1", "q2"];
    await fx.ledger.addRows(
      BATCH,
      ids.map((id) => newRow(id, id === "f1" ? { prompt: HOSTILE_PROMPT } : {})),
      { budget: 100, file: "spring.csv" },
    );
    for (const id of ["a1", "a2", "a3"]) await moveRow(fx.ledger, BATCH, id, "archived", { spent: 8 });
    await moveRow(fx.ledger, BATCH, "old1", "archiving", {
      completedAt: Date.now() - UNARCHIVED_AGE_MS,
      spent: 8,
    });
    await moveRow(fx.ledger, BATCH, "g1", "generating");
    await moveRow(fx.ledger, BATCH, "s1", "submitted");
    await moveRow(fx.ledger, BATCH, "f1", "failed", { error: HOSTILE_ERROR });
    await moveRow(fx.ledger, BATCH, "f2", "failed", { error: PLAIN_ERROR });
    await moveRow(fx.ledger, BATCH, "c1", "cancelled");
    await fx.queues.addSubmit({ batch: BATCH, rowId: "q1", resubmit: 0 });

    await fx.ledger.addRows(OTHER, [newRow("x1"), newRow("x2")]);
    for (const id of ["x1", "x2"]) await moveRow(fx.ledger, OTHER, id, "archived", { spent: 4 });

    await registerAccount(fx.redis, fx.prefix, account);
    await new FleetPause(fx.redis, { accountId: account }).pause("manual", PAUSE_REASON);

    const dashboard = await startDashboard({
      port: 0,
      queuePrefix: fx.prefix,
      ledger: fx.ledger,
      queues: fx.queues.queues,
      fleet: async () => readFleetState(buildPauseControls(fx.redis, [account])),
      ping: () => fx.redis.ping(),
      ...(options.refreshSeconds === undefined ? {} : { refreshSeconds: options.refreshSeconds }),
    });
    return {
      fx,
      dashboard,
      accountId: account,
      async close() {
        await dashboard.close();
        await deleteAccountKeys(fx.redis, apiKey);
        await fx.close();
      },
    };
  } catch (error) {
    await deleteAccountKeys(fx.redis, apiKey).catch(() => undefined);
    await fx.close();
    throw error;
  }
}
