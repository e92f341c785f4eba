// The import rules of src/ (docs/ARCHITECTURE.md explains them). `npm run depcruise` checks them
// in CI; test/unit/dependency-rule.test.ts plants a violation of each and watches them fail.
//
// Rules match paths relative to the directory depcruise runs in (`src/...`), so the same file
// checks the fixture tree in test/fixtures/depcruise when run from there.
const path = require("node:path");

/**
 * Layers, low to high. A folder may import its own files, every folder of a lower layer, and the
 * folders `sideways` grants it within its own layer; never a higher layer.
 */
const layers = [
  ["core"],
  ["config", "kie", "archive", "ledger", "fleet", "redis", "manifest"],
  ["worker", "producer"],
  ["bull"],
  ["report"],
  ["commands"],
  ["metrics", "alerts", "dashboard"],
  ["app"],
  ["demo", "cli"],
];

/**
 * Imports within one layer, each in one direction only (the reverse is then a layer violation,
 * so no pair can form a cycle).
 */
const sideways = {
  manifest: ["kie"], // row rules read the KIE models' parameter limits
  fleet: ["redis", "kie"], // fleet scripts run on the one Lua runner; the pause policy maps KIE errors
  ledger: ["redis"], // ledger scripts run on the one Lua runner
  producer: ["worker"], // enqueue builds the submit stage's job payload (worker/jobs.ts)
  alerts: ["metrics"], // the fleet alert reads the fleet gauges' snapshot type
  cli: ["demo"], // `kie-batch demo` runs the demo
};

/**
 * Outside the layers: the KIE look-alike server stands on core and kie only, and only the
 * assembly and the entry points (app, demo, cli) start it; production code never imports it.
 * `types` holds ambient declarations (`declare module`) and is imported by nobody.
 */
const simulator = { mayImport: ["core", "kie"], importedBy: ["app", "demo", "cli"] };

const folders = [...layers.flat(), "simulator", "types"];
const under = (names) => `^src/(${names.join("|")})/`;

/** One rule per layered folder: "X may import only ...". */
function layerRules() {
  return layers.flatMap((layer, level) =>
    layer.map((folder) => {
      const allowed = [
        folder,
        ...layers.slice(0, level).flat(),
        ...(sideways[folder] ?? []),
        ...(simulator.importedBy.includes(folder) ? ["simulator"] : []),
      ];
      return {
        name: `layer-${folder}`,
        severity: "error",
        comment: `src/${folder} may import only ${allowed.join(", ")} (lower layers${
          sideways[folder] ? " and its sideways grants" : ""
        }): a lower layer never imports a higher one.`,
        from: { path: `^src/${folder}/` },
        to: { path: "^src/", pathNot: under(allowed) },
      };
    }),
  );
}

// A sideways grant must point within its own layer, and at no folder that grants back.
for (const [from, targets] of Object.entries(sideways)) {
  const layer = layers.find((l) => l.includes(from));
  for (const to of targets) {
    if (!layer?.includes(to)) throw new Error(`sideways ${from} -> ${to} crosses layers`);
    if ((sideways[to] ?? []).includes(from)) throw new Error(`sideways ${from} <-> ${to} is a cycle`);
  }
}

/** The infrastructure that pure logic must not see, as resolved paths (or bare, if unresolved). */
const infrastructure =
  "(^|/)node_modules/(bullmq|ioredis|undici|@aws-sdk/[^/]+)/|^(bullmq|ioredis|undici|@aws-sdk/)";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "pure-logic-no-infrastructure",
      severity: "error",
      comment:
        "Stage logic (src/worker, webhook included), manifest rules and core (backoff, clock, units, " +
        "ids) talk to small ports, never to bullmq, the AWS SDK, ioredis or undici; type-only " +
        "imports count too. Put the adapter in bull/, archive/, kie/, ledger/ or fleet/.",
      from: { path: "^src/(worker|manifest|core)/" },
      to: { path: infrastructure },
    },
    {
      name: "stage-logic-no-network",
      severity: "error",
      comment:
        "Stages reach the network through their ports (KieApi, ArchiveStore); only the webhook " +
        "receiver (src/worker/webhook.ts) is an HTTP server.",
      from: { path: "^src/worker/", pathNot: "^src/worker/webhook[.]ts$" },
      to: { dependencyTypes: ["core"], path: "^(node:)?(http|https|http2|net|tls|dgram)$" },
    },
    ...layerRules(),
    {
      name: "simulator-stands-alone",
      severity: "error",
      comment: `src/simulator may import only ${simulator.mayImport.join(", ")} and its own files.`,
      from: { path: "^src/simulator/" },
      to: { path: "^src/", pathNot: under(["simulator", ...simulator.mayImport]) },
    },
    {
      name: "types-are-ambient",
      severity: "error",
      comment: "src/types holds ambient declarations (`declare module`): no module imports them.",
      from: { path: "^src/" },
      to: { path: "^src/types/" },
    },
    {
      name: "types-import-no-src",
      severity: "error",
      comment: "src/types holds ambient declarations: they import no src/ module.",
      from: { path: "^src/types/" },
      to: { path: "^src/", pathNot: "^src/types/" },
    },
    {
      name: "layer-unknown-folder",
      severity: "error",
      comment:
        "Every src/ file lives in a folder of the layer table in .dependency-cruiser.cjs: add a " +
        "new folder there (and to docs/ARCHITECTURE.md) before importing it or from it.",
      from: { path: "^src/", pathNot: under(folders) },
      to: {},
    },
    {
      name: "layer-unknown-folder-target",
      severity: "error",
      comment: "This import reaches a src/ file outside every folder of the layer table.",
      from: { path: "^src/" },
      to: { path: "^src/", pathNot: under(folders) },
    },
    {
      name: "no-circular",
      severity: "error",
      comment: "Import cycles: invert one edge through a port (an interface in the lower folder).",
      from: {},
      to: { circular: true },
    },
    {
      name: "not-to-dev-dep",
      severity: "error",
      comment:
        "src/ ships in the package without devDependencies. The one exception: demo --s3 loads " +
        "s3rver with a guarded dynamic import that explains itself when it is missing.",
      from: { path: "^src/", pathNot: "^src/(demo/s3[.]ts|types/s3rver[.]d[.]ts)$" },
      to: {
        dependencyTypes: ["npm-dev"],
        dependencyTypesNot: ["type-only"],
        pathNot: "node_modules/@types/",
      },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      comment: "An import that resolves to no file (a typo, a moved file, or a missing package).",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // Type-only imports count: `import type { Queue } from "bullmq"` in stage logic is a violation.
    tsPreCompilationDeps: true,
    // Absolute, so a run from the fixture directory resolves NodeNext `.js` suffixes the same way.
    tsConfig: { fileName: path.join(__dirname, "tsconfig.json") },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".d.ts", ".js"],
      mainFields: ["module", "main", "types", "typings"],
    },
    skipAnalysisNotInRules: true,
    reporterOptions: { text: { highlightFocused: true } },
  },
};
