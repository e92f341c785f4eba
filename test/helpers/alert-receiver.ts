/**
 * A local stand-in for a Slack-style incoming webhook: collects every JSON POST it gets, and can
 * be told to hang (read the request, never answer) to prove nobody waits for it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

interface ReceivedAlert {
  text: string;
  event: string;
  id: string;
  [field: string]: unknown;
}

export interface AlertReceiver {
  /** With a path holding a made-up token, as Slack's URLs do. */
  url: string;
  token: string;
  alerts: ReceivedAlert[];
  /** Raw bodies, exactly as received. */
  bodies: string[];
  of(event: string): ReceivedAlert[];
  close(): Promise<void>;
}

export async function startAlertReceiver(options: { hang?: boolean } = {}): Promise<AlertReceiver> {
  const alerts: ReceivedAlert[] = [];
  const bodies: string[] = [];
  const token = "T0000/B0000/alert-token-5e3f9a";
  const hanging: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      bodies.push(body);
      alerts.push(JSON.parse(body) as ReceivedAlert);
      if (options.hang) {
        hanging.push(res);
        return;
      }
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/services/${token}`,
    token,
    alerts,
    bodies,
    of: (event) => alerts.filter((a) => a.event === event),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
