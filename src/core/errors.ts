/**
 * The base of every error class of the project: a stable `code` to classify by (it survives
 * serialisation into Redis and across processes, where `instanceof` does not), a `retryable`
 * flag, and one `toJSON` that shows only what a subclass names in `details()`: never `cause`,
 * which may be a library error holding a request with its headers.
 */
export abstract class CodedError<Code extends string = string> extends Error {
  /** Set by each subclass as a literal, so the class can be told after serialisation. */
  abstract override readonly name: string;
  readonly code: Code;
  /** Whether trying the same operation again may succeed. */
  readonly retryable: boolean;

  constructor(code: Code, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    // No `cause` property at all when there is none, as a plain Error.
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
  }

  /**
   * The subclass's own fields that may be shown and stored: none by default. A field holding a
   * secret (a key, a signed URL) never goes here.
   */
  protected details(): Record<string, unknown> {
    return {};
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...this.details(),
    };
  }
}

/**
 * A value given by the user is invalid: a flag, an argument or an environment variable. The
 * message is meant for the user as is (the CLI prints it and exits 2); `option` names the flag
 * or variable, or is "" when the parser is not told which one it reads.
 */
export class ValueError<Code extends string = "invalid_value"> extends CodedError<Code> {
  override readonly name: string = "ValueError";

  constructor(
    readonly option: string,
    message: string,
    code: Code = "invalid_value" as Code,
  ) {
    super(code, message);
  }

  protected override details(): Record<string, unknown> {
    return { option: this.option };
  }
}

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
