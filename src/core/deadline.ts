/**
 * `promise`, or a rejection once `ms` have passed without its answer (`<what>: no answer within
 * <ms> ms`). The promise itself goes on; only the wait for it ends.
 */
export function answerWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
