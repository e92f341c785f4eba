import type { ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";

export interface ChildOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Everything a spawned child (stdout and stderr piped) wrote, and its exit code, once it closes. */
export function childOutput(
  child: ChildProcessByStdio<Writable | null, Readable, Readable>,
): Promise<ChildOutput> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
