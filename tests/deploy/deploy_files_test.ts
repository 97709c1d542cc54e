/** The files in deploy/ are checked by the tools that will read them. */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";
import { freePort } from "../helpers/ports.ts";
import { ROOT } from "./process.ts";

const DEPLOY = `${ROOT}deploy`;

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

async function installed(cmd: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${cmd}`])).code === 0;
}

Deno.test("deploy/gateway.service is hardened and passes systemd-analyze", async () => {
  const unit = await Deno.readTextFile(`${DEPLOY}/gateway.service`);
  for (
    const line of [
      /^User=gateway$/m,
      /^NoNewPrivileges=yes$/m,
      /^ProtectSystem=strict$/m,
      /^ReadOnlyPaths=\/etc\/gateway$/m,
      /^Restart=on-failure$/m,
      /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m,
      /^KillSignal=SIGTERM$/m,
    ]
  ) assertMatch(unit, line);
  if (!(await installed("systemd-analyze"))) {
    console.log("SKIPPED: systemd-analyze is not installed; only the unit's text was checked");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "gw-unit-" });
  try {
    // verify insists the binary exists: point the unit at one that does.
    await Deno.writeTextFile(
      `${dir}/gateway.service`,
      unit.replaceAll("/usr/local/bin/gateway", "/bin/true"),
    );
    const verify = await run("systemd-analyze", ["verify", `${dir}/gateway.service`]);
    assertEquals(verify.code, 0, verify.text);
    assertEquals(verify.text.trim(), "");
    const security = await run("systemd-analyze", [
      "security",
      "--offline=yes",
      "--no-pager",
      `${dir}/gateway.service`,
    ]);
    const level = /Overall exposure level for gateway\.service: ([\d.]+)/.exec(security.text);
    assertOk(level, security.text);
    assertOk(Number(level[1]) <= 2.0, `exposure ${level[1]} should stay at "OK" (<= 2.0)`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deploy/haproxy.cfg is valid for haproxy -c", async () => {
  const cfg = await Deno.readTextFile(`${DEPLOY}/haproxy.cfg`);
  assertMatch(cfg, /^\s+mode tcp$/m);
  assertEquals(cfg.match(/^\s+server gw\d .*:8080$/gm)?.length, 3);
  assertMatch(cfg, /send-proxy-v2/);
  const check = await run("haproxy", ["-c", "-f", `${DEPLOY}/haproxy.cfg`], {
    ADMIN_TOKEN: "t",
  });
  assertEquals(check.code, 0, check.text);
  assertMatch(check.text, /Configuration file is valid/);
});

Deno.test("deploy/redis.conf starts redis-server with persistence off and volatile-ttl", async () => {
  const port = freePort();
  const child = new Deno.Command("redis-server", {
    args: [`${DEPLOY}/redis.conf`, "--port", String(port), "--bind", "127.0.0.1"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const get = async (key: string) => {
      for (let i = 0; i < 50; i++) {
        const r = await run("redis-cli", ["-p", String(port), "--raw", "config", "get", key]);
        if (r.code === 0 && r.text.startsWith(key)) return r.text.split("\n")[1] ?? "";
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`redis-server on ${port} did not answer`);
    };
    assertEquals(await get("maxmemory-policy"), "volatile-ttl");
    assertEquals(await get("save"), "");
    assertEquals(await get("appendonly"), "no");
    assertEquals(await get("maxmemory"), String(1024 ** 3));
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});
