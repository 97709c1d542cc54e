/** The gateway as its own process (`deno run main.ts`), for what only a process has: signals, OTel export. */
import { freePort } from "../helpers/ports.ts";
import { V8_FLAGS_ARG } from "../../lib/cli/v8_flags.ts";

export interface GatewayProcess {
  readonly child: Deno.ChildProcess;
  readonly dir: string;
  readonly file: string;
  /** `http://127.0.0.1:PORT` of the public listener and of the admin listener. */
  readonly url: string;
  readonly admin: string;
  /** SIGKILLs the process if it still runs and removes its folder. */
  close(): Promise<void>;
}

/**
 * Writes `config(port, adminPort)` to a temp folder, starts the gateway on it
 * and waits until /readyz answers 200.
 */
export async function startGatewayProcess(
  config: (port: number, adminPort: number) => string,
  env: Record<string, string> = {},
): Promise<GatewayProcess> {
  const dir = await Deno.makeTempDir({ prefix: "gw-proc-" });
  const file = `${dir}/gateway.yaml`;
  const port = freePort();
  const adminPort = freePort();
  await Deno.writeTextFile(file, config(port, adminPort));
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    // One isolate: signals and exports of one gateway, not of a cluster.
    args: ["run", "-A", V8_FLAGS_ARG, main, "--config", file, "--workers", "1"],
    env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  const p: GatewayProcess = {
    child,
    dir,
    file,
    url: `http://127.0.0.1:${port}`,
    admin: `http://127.0.0.1:${adminPort}`,
    async close() {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
  for (let i = 0; i < 300; i++) {
    const r = await fetch(`${p.admin}/readyz`).catch(() => null);
    await r?.body?.cancel();
    if (r?.status === 200) return p;
    await new Promise((res) => setTimeout(res, 50));
  }
  await p.close();
  throw new Error("the gateway process did not become ready");
}
