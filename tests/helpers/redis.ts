/** A real redis-server on a free loopback port, for tests that need the shared store. */
import { freePort } from "./ports.ts";

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Stops the server (to test outages); `start()` brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open and nothing answers, as a stalled Redis. */
  pause(): void;
  /** Lets a paused server run again (SIGCONT). */
  resume(): void;
  close(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const port = freePort();
  let child: Deno.ChildProcess | null = null;
  const start = async () => {
    child = new Deno.Command("redis-server", {
      args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    for (let i = 0; i < 100; i++) {
      try {
        const c = await Deno.connect({ hostname: "127.0.0.1", port });
        await c.write(new TextEncoder().encode("PING\r\n"));
        const buf = new Uint8Array(16);
        const n = await c.read(buf);
        c.close();
        if (n && new TextDecoder().decode(buf.subarray(0, n)).startsWith("+PONG")) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not start on port ${port}`);
  };
  const stop = async () => {
    const c = child as Deno.ChildProcess | null;
    child = null;
    if (!c) return;
    c.kill("SIGKILL");
    await c.status;
  };
  const signal = (s: Deno.Signal) => (child as Deno.ChildProcess | null)?.kill(s);
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    pause: () => signal("SIGSTOP"),
    resume: () => signal("SIGCONT"),
    close: stop,
  };
}

/** Sends one inline command to a redis-server and returns its raw reply (for SCRIPT FLUSH, DBSIZE...). */
export async function redisCommand(port: number, command: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(`${command}\r\n`));
    const buf = new Uint8Array(64 * 1024);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  } finally {
    conn.close();
  }
}
