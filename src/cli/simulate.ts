import { parseSimulatorFlags, type SimulatorFlags, startSimulator } from "../simulator/index.js";
import { onShutdown } from "./signals.js";

/** `kie-batch simulate`: runs the KIE look-alike until SIGINT/SIGTERM. */
export async function runSimulateCommand(flags: SimulatorFlags): Promise<void> {
  // A bad flag is a ValueError: exitWithError prints it and exits 2.
  const options = parseSimulatorFlags({
    ...flags,
    apiKey: flags.apiKey ?? process.env.KIE_API_KEY ?? undefined,
  });
  if (options.apiKey === "") delete options.apiKey;
  const sim = await startSimulator(options);
  process.stdout.write(
    `KIE simulator listening on ${sim.url}\n` +
      `  use it with: KIE_BASE_URL=${sim.url} KIE_API_KEY=${options.apiKey ? "<the key you gave>" : "<any key>"}\n` +
      `  stats: GET ${sim.url}/__sim/stats\n`,
  );
  await new Promise<void>((resolve) =>
    onShutdown(async () => {
      await sim.close();
      resolve();
    }),
  );
}
