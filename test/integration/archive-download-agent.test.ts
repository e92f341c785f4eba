import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { request } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { downloadImage } from "../../src/archive/download.js";
import { createDownloadAgent } from "../../src/archive/download-agent.js";
import { digestOf, type ImageServer, pngBytes, startImageServer } from "../helpers/image-server.js";

let a: ImageServer;
let b: ImageServer;
const agents: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  a = await startImageServer();
  b = await startImageServer();
});
afterEach(async () => {
  await Promise.all(agents.splice(0).map((agent) => agent.close()));
});
afterAll(async () => {
  await a?.close();
  await b?.close();
});

function agentFor(allowHosts: string[]) {
  const agent = createDownloadAgent(allowHosts);
  agents.push(agent);
  return agent;
}

describe("a worker's download agent", () => {
  it("keeps its connection alive across downloads", async () => {
    a.route("/k.png", { body: await pngBytes(2_000) });
    const dispatcher = agentFor([a.host]);
    let connects = 0;
    const onConnect = () => connects++;
    subscribe("undici:client:connected", onConnect);
    try {
      for (let i = 0; i < 20; i++) {
        const image = await downloadImage({ url: a.url("/k.png"), allowHosts: [a.host], dispatcher });
        expect((await digestOf(image.stream)).bytes).toBe(2_000);
      }
    } finally {
      unsubscribe("undici:client:connected", onConnect);
    }
    // 20 downloads, one after the other, over at most two connections: the first is still being
    // handed back to the pool when the second download starts; from then on both are reused.
    expect(connects).toBeGreaterThanOrEqual(1);
    expect(connects).toBeLessThanOrEqual(2);
  });

  it("refuses to connect to a private address itself, whatever asked it (no request is sent)", async () => {
    b.route("/x.png", { body: await pngBytes(500) });
    const before = b.requests.length;
    // Straight through the agent: no downloadImage vetting in front of it.
    await expect(request(b.url("/x.png"), { dispatcher: agentFor([]) })).rejects.toMatchObject({
      name: "DownloadError",
      code: "host_refused",
    });
    // A name resolving to loopback, and a host:port entry that allows another port only.
    await expect(
      request(`http://localhost:${b.port}/x.png`, { dispatcher: agentFor([a.host]) }),
    ).rejects.toMatchObject({ code: "host_refused" });
    await expect(request(b.url("/x.png"), { dispatcher: agentFor([a.host]) })).rejects.toMatchObject({
      code: "host_refused",
    });
    expect(b.requests.length).toBe(before);
  });

  it("a redirect to a refused host is refused without fetching it, on a kept connection too", async () => {
    const dispatcher = agentFor([a.host]);
    a.route("/ok.png", { body: await pngBytes(500) });
    await digestOf((await downloadImage({ url: a.url("/ok.png"), allowHosts: [a.host], dispatcher })).stream);
    b.route("/target.png", { body: await pngBytes(500) });
    a.route("/hop", { redirectTo: b.url("/target.png") });
    const before = b.requests.length;
    await expect(
      downloadImage({ url: a.url("/hop"), allowHosts: [a.host], dispatcher }),
    ).rejects.toMatchObject({
      code: "host_refused",
    });
    expect(b.requests.length).toBe(before);
  });

  it("connects to an allow-listed name", async () => {
    a.route("/n.png", { body: await pngBytes(700) });
    const url = `http://localhost:${a.port}/n.png`;
    const image = await downloadImage({
      url,
      allowHosts: ["localhost"],
      dispatcher: agentFor(["localhost"]),
    });
    expect((await digestOf(image.stream)).bytes).toBe(700);
  });
});
