/**
 * True when `error` is an instance of `type`, or a plain object that crossed a serialisation
 * boundary (Redis, a child process) still carrying the class's `name` and a string `code`.
 */
export function isCodedError<T extends Error>(
  error: unknown,
  type: abstract new (...args: never[]) => T,
  name: string,
): error is T {
  return (
    error instanceof type ||
    (typeof error === "object" &&
      error !== null &&
      (error as { name?: unknown }).name === name &&
      typeof (error as { code?: unknown }).code === "string")
  );
}
