/**
 * Redis commands per row, from `INFO commandstats` before and after a run: every client's
 * commands, those run inside Lua scripts included (Redis counts both), and the script calls
 * (EVALSHA/EVAL: one round trip each) apart. Only meaningful on the bench's private
 * redis-server, where no other client's commands are counted.
 */
import type { Redis } from "ioredis";

export type CommandCounts = Map<string, number>;

export async function commandCounts(redis: Redis): Promise<CommandCounts> {
  const text = await redis.info("commandstats");
  const counts: CommandCounts = new Map();
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    counts.set(match[1]!, Number(match[2]));
  return counts;
}

/** Commands per row between two counts: all of them, and the script calls among them. */
export function perRow(
  before: CommandCounts,
  after: CommandCounts,
  rows: number,
): { commands: number; scripts: number } {
  let commands = 0;
  let scripts = 0;
  for (const [name, calls] of after) {
    const delta = calls - (before.get(name) ?? 0);
    commands += delta;
    if (name === "evalsha" || name === "eval") scripts += delta;
  }
  return { commands: commands / rows, scripts: scripts / rows };
}
