import type { KieApi } from "../../src/kie/types.js";

/** A KIE client for a submit-stage test: `submit` as given; any other call fails the test. */
export function submitOnlyKie(submit: KieApi["submit"]): KieApi {
  return {
    submit,
    getTask: async () => {
      throw new Error("not used");
    },
    refreshDownloadUrl: async () => {
      throw new Error("not used");
    },
    getCredits: async () => 0,
  };
}
