/**
 * One event-loop turn per caller: each `next()` resolves in its own turn of the loop, after the
 * previous caller's, so I/O (requests arriving, timers) is served between two callers' work.
 * The simulator draws one picture per turn this way (server.ts): drawn back to back, pictures
 * would hold creates that arrived meanwhile and the rate window would stamp them late, closer
 * together than they came (KIE counts creates as they come, whatever it serves besides).
 */
export function oneTurnEach(): () => Promise<void> {
  let last: Promise<void> = Promise.resolve();
  return () => {
    // An immediate queued while the loop runs immediates waits for the loop's next turn.
    last = last.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    return last;
  };
}
