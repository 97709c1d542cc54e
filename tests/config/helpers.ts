/** Loads config text through the real loader and returns its errors as printed. */
import { ConfigError, formatIssue } from "../../lib/config/issues.ts";
import { loadConfigFile } from "../../lib/config/load.ts";
import { assertEquals } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";

/** Every error of `yaml`, formatted, with the temp folder cut so that lines read `gateway.yaml:…`. */
export async function configErrors(yaml: string): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "gw-config-" });
  const file = `${dir}/gateway.yaml`;
  await Deno.writeTextFile(file, yaml);
  try {
    await loadConfigFile(file, () => undefined);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => formatIssue(i).replace(`${dir}/`, ""));
    throw e;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  throw new Error("expected a configuration error");
}

/**
 * Starts a gateway on a good config, rewrites its file with `broken(upstreamUrl)`
 * and reloads through the admin API: the reload must answer 422 with exactly
 * `errors(file)`, and the old plan must keep serving.
 */
export async function assertReloadRefused(
  broken: (upstreamUrl: string) => string,
  errors: (file: string) => string[],
): Promise<void> {
  const up = startUpstream();
  const g = await startGateway(baseConfig(`upstreams:
  users: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: users, match: { path: /users }, upstream: users }
`));
  try {
    const hash = g.gw.plan.hash;
    await Deno.writeTextFile(g.file, broken(up.url));
    const res = await fetch(`${g.admin}/reload`, { method: "POST" });
    assertEquals(res.status, 422);
    assertEquals((await res.json()).errors, errors(g.file));
    assertEquals([g.gw.reloads.failed, g.gw.plan.hash], [1, hash]);
    const served = await fetch(`${g.url()}/users`);
    assertEquals(served.status, 200);
    await served.body?.cancel();
  } finally {
    await g.close();
    await up.close();
  }
}
