/**
 * Assertions shared by the KIE client tests: what a call threw, and that no way of printing it
 * (JSON, String, stack, util.inspect with hidden fields, the cause) shows the API key.
 */
import { inspect } from "node:util";
import { expect } from "vitest";
import { KieError } from "../../src/kie/errors.js";

/** Long and distinctive, so a partial leak would still be found by `toContain`. */
export const TEST_API_KEY = "sk-kie-test-7f3a9c1e5b2d4068";

function expectNoSecret(error: unknown, secret: string = TEST_API_KEY): void {
  const views = [
    JSON.stringify(error),
    String(error),
    error instanceof Error ? (error.stack ?? "") : "",
    inspect(error, { depth: null, showHidden: true }),
    JSON.stringify(error instanceof Error ? (error.cause ?? null) : null),
  ];
  for (const view of views) expect(view).not.toContain(secret);
}

/** The KieError a call rejected with, checked to carry no secret. */
export async function kieErrorOf(
  promise: Promise<unknown>,
  secret: string = TEST_API_KEY,
): Promise<KieError> {
  const error = await promise.then(
    (value) => new Error(`expected a KieError, got ${JSON.stringify(value)}`),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(KieError);
  expectNoSecret(error, secret);
  return error as KieError;
}
