import { connect } from "node:net";

/** Milliseconds until the server at `port` closes a socket that sent half a request's headers. */
export async function halfSentHeldFor(port: number, path = "/healthz"): Promise<number> {
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
  const started = Date.now();
  await new Promise<void>((resolve) => {
    socket.on("data", () => {});
    socket.once("close", () => resolve());
  });
  return Date.now() - started;
}
