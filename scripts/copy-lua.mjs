// Build step after tsc, which emits only JavaScript: copies every .lua file under src/ (the Redis
// scripts, read at module load beside the module that runs them) to the same path under dist/.
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";

const from = "src";
const to = "dist";
let copied = 0;
for (const file of readdirSync(from, { recursive: true, encoding: "utf8" })) {
  if (!file.endsWith(".lua")) continue;
  mkdirSync(dirname(join(to, file)), { recursive: true });
  copyFileSync(join(from, file), join(to, file));
  copied += 1;
}
if (copied === 0) throw new Error(`copy-lua: no .lua file under ${from}/`);
console.log(`copy-lua: ${copied} .lua files copied to ${to}/`);
