import { archiveStage } from "./archive.js";
import type { Stage, StageJobData } from "./jobs.js";
import { pollStage } from "./poll.js";
import type { StageDefinition } from "./stage.js";
import { submitStage } from "./submit.js";

/**
 * Every stage, keyed by its queue name, in pipeline order. The type makes each key's value the
 * stage of that name with that queue's job data, so `STAGE_DEFINITIONS[stage]` needs no cast.
 */
export const STAGE_DEFINITIONS: {
  readonly [S in Stage]: StageDefinition<StageJobData[S]> & { readonly name: S };
} = {
  submit: submitStage,
  poll: pollStage,
  archive: archiveStage,
};
