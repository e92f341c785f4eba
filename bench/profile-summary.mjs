// `node bench/profile-summary.mjs FILE.cpuprofile [rows]`: a --cpu-prof profile (e.g. from
// `bench/profile-worker.ts 1000 --keep DIR`) summed by where the code lives: node_modules/<pkg>,
// node:internal/<area>, src/<folder> (the dist/ the bin runs), native frames; then the top 25
// functions by self and by total (inclusive) time, in ms and ms per row. Idle time left out.
// Native frames are where syscalls return, so on a loaded machine they also carry time spent
// waiting for a core: compare runs, not single figures.
import { readFileSync } from "node:fs";

const p = JSON.parse(readFileSync(process.argv[2], "utf8"));
const rows = Number(process.argv[3] ?? 1000);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
function pkg(url, fn) {
  if (!url) return fn.startsWith("(") ? fn : "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm !== -1) {
    const r = url.slice(nm + 13).split("/");
    return `nm/${r[0].startsWith("@") ? `${r[0]}/${r[1]}` : r[0]}`;
  }
  const d = url.indexOf("/dist/");
  if (d !== -1) {
    const r = url.slice(d + 6).split("/");
    return `src/${r.length > 1 ? r[0] : r[0]}`;
  }
  if (url.startsWith("node:internal")) return `node:internal/${url.slice(14).split("/")[0]}`;
  if (url.startsWith("node:")) return url;
  return url;
}
const label = (f) =>
  `${f.functionName || "(anon)"} ${pkg(f.url, f.functionName)}${
    f.url.includes("/dist/")
      ? "/" +
        f.url
          .slice(f.url.indexOf("/dist/") + 6)
          .split("/")
          .slice(1)
          .join("/")
      : ""
  }:${f.lineNumber + 1}`;
const self = new Map(),
  tot = new Map(),
  pk = new Map();
let total = 0,
  idle = 0;
p.samples.forEach((id, i) => {
  const dt = p.timeDeltas[i] ?? 0;
  total += dt;
  const f = byId.get(id).callFrame;
  if (f.functionName === "(idle)") {
    idle += dt;
    return;
  }
  const l = label(f);
  self.set(l, (self.get(l) ?? 0) + dt);
  const k = pkg(f.url, f.functionName);
  pk.set(k, (pk.get(k) ?? 0) + dt);
  const seen = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) seen.add(label(byId.get(at).callFrame));
  for (const s of seen) tot.set(s, (tot.get(s) ?? 0) + dt);
});
const busy = total - idle;
const fmt = (us) =>
  `${(us / 1000).toFixed(0).padStart(6)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}% ${(us / 1000 / rows).toFixed(3)} ms/row`;
console.log(
  `busy ${(busy / 1000).toFixed(0)} ms (${(busy / 1000 / rows).toFixed(2)} ms/row) of ${(total / 1000).toFixed(0)} sampled`,
);
const top = (m, n, filt = () => true) =>
  [...m]
    .filter(filt)
    .sort((a, b) => b[1] - a[1])
    .slice(0, n);
console.log("\n== by package (self)");
for (const [k, v] of top(pk, 30)) console.log(fmt(v), k);
console.log("\n== top 25 self");
for (const [k, v] of top(self, 25)) console.log(fmt(v), k);
console.log("\n== top 25 total (excluding root/program frames)");
for (const [k, v] of top(
  tot,
  25,
  ([k]) =>
    !/^\(root\)|^\(program\)/.test(k) &&
    !/processTicksAndRejections|listOnTimeout|processTimers|emit node:events/.test(k),
))
  console.log(fmt(v), k);
