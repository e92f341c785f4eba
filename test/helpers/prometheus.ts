/**
 * Reading metrics in tests: the Prometheus text format (every sample as name, labels and value,
 * and a lookup by name and a subset of labels), and one series of a prom-client metric object.
 */
import type { Counter, Gauge, Histogram } from "prom-client";
import { createWorkerMetrics } from "../../src/metrics/registry.js";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = LINE.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(LABEL)) {
      labels[key!] = value!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the first sample named `name` whose labels include `labels`; undefined when none. */
export function sample(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samples.find(
    (s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value),
  )?.value;
}

/** Names with a `# TYPE` line: every metric the registry exports, also those without samples yet. */
export function metricNames(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
}

type AnyMetric = Counter<string> | Gauge<string> | Histogram<string>;

/** The value of one series (of a histogram: its `_count` or `_sum` with `suffix`); 0 when absent. */
export async function seriesValue(
  metric: AnyMetric,
  labels: Record<string, string> = {},
  suffix = "",
): Promise<number> {
  const { values } = await metric.get();
  const found = values.find(
    (v) =>
      (suffix === "" || (v as { metricName?: string }).metricName?.endsWith(suffix)) &&
      Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want),
  );
  return found?.value ?? 0;
}

/** Metrics without the process collectors, for unit tests. */
export const metricsFor = () => createWorkerMetrics({ defaultMetrics: false });
