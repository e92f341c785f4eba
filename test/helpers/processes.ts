/**
 * Spawned `kie-batch` processes for end-to-end tests: start them as a user would, wait for a line
 * of output or for the exit, kill them, and keep their stderr (JSON log lines) for failure
 * messages. A `ProcessSet` owns every process it started; `killAll()` in afterEach/afterAll
 * leaves none behind, even when a test fails half-way.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { waitForRedis } from "../../src/app/connections.js";
import { freePort } from "../../src/demo/local-redis.js";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "bin", "kie-batch.js");

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliRun extends ExitInfo {
  stdout: string;
  stderr: string;
}

/** One spawned process: its output so far, its exit, and ways to end it. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  /** Set once the process has exited. */
  exitInfo: ExitInfo | undefined;
  readonly exited: Promise<ExitInfo>;
  readonly startedAt = Date.now();

  constructor(
    readonly name: string,
    args: readonly string[],
    env: Record<string, string>,
    command: string = process.execPath,
  ) {
    this.child = spawn(command, command === process.execPath ? [CLI, ...args] : [...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stdout += chunk;
    });
    this.child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.child.once("error", (error) => {
        this.stderr += `spawn error: ${error.message}\n`;
        this.exitInfo ??= { code: null, signal: null };
        resolve(this.exitInfo);
      });
      // "close", not "exit": by then stdout and stderr are read to the end.
      this.child.once("close", (code, signal) => {
        this.exitInfo ??= { code, signal };
        resolve(this.exitInfo);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first match of `pattern` in stdout (or stderr); rejects on exit or timeout. */
  async waitForOutput(
    pattern: RegExp,
    options: { stream?: "stdout" | "stderr"; timeoutMs?: number } = {},
  ): Promise<RegExpExecArray> {
    const stream = options.stream ?? "stdout";
    const deadline = Date.now() + (options.timeoutMs ?? 15_000);
    for (;;) {
      const match = pattern.exec(this[stream]);
      if (match) return match;
      if (!this.running) throw new Error(`${this.name} exited before printing ${pattern}\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${pattern}\n${this.tail()}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** The exit, or an error naming the process after `timeoutMs` (the process is left running). */
  async waitForExit(timeoutMs = 30_000): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms\n${this.tail()}`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal if the process still runs. */
  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGKILL and wait for the exit. */
  async stop(): Promise<ExitInfo> {
    this.kill("SIGKILL");
    return this.exited;
  }

  /** The last lines of stdout and stderr, for failure messages. */
  tail(lines = 15): string {
    const last = (text: string) => text.trimEnd().split("\n").slice(-lines).join("\n");
    const status = this.exitInfo ? `exited ${JSON.stringify(this.exitInfo)}` : "running";
    return `--- ${this.name} (pid ${this.pid}, ${status}) stdout:\n${last(this.stdout)}\n--- stderr:\n${last(this.stderr)}`;
  }
}

/** Every process a test (file) started; `killAll()` ends those still running. */
export class ProcessSet {
  private readonly all: CliProcess[] = [];

  /** `node bin/kie-batch.js ...args` with `env` over the test's environment. */
  start(name: string, args: readonly string[], env: Record<string, string>): CliProcess {
    const proc = new CliProcess(name, args, env);
    this.all.push(proc);
    return proc;
  }

  /** Any other program (redis-server), owned and killed like the CLI processes. */
  startProgram(name: string, command: string, args: readonly string[]): CliProcess {
    const proc = new CliProcess(name, args, {}, command);
    this.all.push(proc);
    return proc;
  }

  /** Runs a command that must exit by itself within `timeoutMs`; killed and rejected otherwise. */
  async run(args: readonly string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliRun> {
    const proc = this.start(`kie-batch ${args[0] ?? ""}`, args, env);
    try {
      const exit = await proc.waitForExit(timeoutMs);
      return { ...exit, stdout: proc.stdout, stderr: proc.stderr };
    } catch (error) {
      await proc.stop();
      throw error;
    }
  }

  /** SIGKILLs every process still running and waits for each exit. */
  async killAll(): Promise<void> {
    await Promise.all(this.all.filter((p) => p.running).map((p) => p.stop()));
    this.all.length = 0;
  }

  /** Output tails of every process started, for a failure message. */
  report(lines = 15): string {
    return this.all.map((p) => p.tail(lines)).join("\n");
  }

  /** Log lines at level >= error (50) from every process: what a test asserts is empty. */
  errorLogs(): string[] {
    return this.all.flatMap((p) =>
      p.stderr.split("\n").filter((line) => {
        if (!line.startsWith("{")) return false;
        try {
          return (JSON.parse(line) as { level?: number }).level! >= 50;
        } catch {
          return false;
        }
      }),
    );
  }
}

/** A redis-server of the test's own, restartable on the same port with the same data. */
export interface PrivateRedis {
  url: string;
  port: number;
  /** SIGKILLs the server (a crash: acknowledged writes are on disk already, see below). */
  crash(): Promise<void>;
  /** Starts it again on the same port and folder; resolves once it answers PING. */
  restart(): Promise<void>;
}

/**
 * Starts `redis-server` on a free loopback port with an append-only file in `dir`, fsync'd on
 * every write (`appendfsync always`): what survives a restart is exactly what was acknowledged,
 * as a production Redis with persistence gives. Without persistence a restart loses every key,
 * which no product survives.
 */
export async function startPrivateRedis(set: ProcessSet, dir: string): Promise<PrivateRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--dir",
    dir,
    "--protected-mode",
    "yes",
  ];
  let server: CliProcess | undefined;
  const start = async () => {
    server = set.startProgram(`redis-server:${port}`, "redis-server", args);
    const started = server;
    await waitForRedis(url, {
      timeoutMs: 10_000,
      alive: () => {
        if (!started.running) throw new Error("redis-server exited");
      },
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n${started.tail()}`);
    });
  };
  await start();
  return {
    url,
    port,
    async crash() {
      await server?.stop();
    },
    restart: start,
  };
}
