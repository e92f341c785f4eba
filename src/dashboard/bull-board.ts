import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import type { Queue } from "bullmq";
import type { Router } from "express";
import { STAGES, type Stage } from "../worker/jobs.js";

/** What each stage queue does, shown under its name in bull-board. */
const DESCRIPTIONS: Record<Stage, string> = {
  submit: "create requests to KIE, at the account's rate limit",
  poll: "status checks of generations in flight (delayed between checks)",
  archive: "copies of finished images to the archive",
};

export interface BoardOptions {
  queues: Record<Stage, Queue>;
  /** Where the router is mounted: bull-board links its assets and API under it. */
  basePath: string;
  queuePrefix: string;
  /**
   * Hide bull-board's retry, promote, clean and remove buttons. Those change jobs without the
   * ledger knowing; `kie-batch retry`, `cancel` and `purge` keep both in step. @defaultValue true
   */
  readOnly?: boolean;
}

/** bull-board for the three stage queues of one queue prefix, as an express router. */
export function bullBoardRouter(options: BoardOptions): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(options.basePath);
  const readOnlyMode = options.readOnly ?? true;
  createBullBoard({
    queues: STAGES.map(
      (stage) =>
        new BullMQAdapter(options.queues[stage], {
          readOnlyMode,
          allowRetries: !readOnlyMode,
          description: DESCRIPTIONS[stage],
        }),
    ),
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: `kie-batch · ${options.queuePrefix}`,
        miscLinks: [{ text: "Batch overview", url: "/" }],
        hideDocsLink: true,
      },
    },
  });
  return serverAdapter.getRouter() as Router;
}
