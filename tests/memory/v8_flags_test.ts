/** The V8 heap settings of lib/cli/v8_flags.ts: accepted, effective, and passed by every launcher. */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { V8_FLAGS_ARG } from "../../lib/cli/v8_flags.ts";
import { compileArgs } from "../../scripts/compile.ts";
import denoJson from "../../deno.json" with { type: "json" };

const ROOT = new URL("../..", import.meta.url).pathname;

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("V8 accepts the flags: the gateway CLI starts with them", async () => {
  // Deno exits with an error before running anything when V8 does not know a flag.
  const r = await run(["run", "-A", V8_FLAGS_ARG, `${ROOT}main.ts`, "version"]);
  assertEquals(r.code, 0, r.stderr);
  assertOk(r.stdout.startsWith("gateway "), r.stdout);
});

Deno.test("the flags cap the young generation at 2 x 8 MB (16 MB without them: 2 x 16)", async () => {
  // Enough allocation, with some survivors, for V8 to grow the young generation to its cap.
  const probe = `
    import v8 from "node:v8";
    const kept = [];
    for (let i = 0; i < 3e6; i++) {
      const o = { a: i, b: [i, i + 1], s: "x" + i };
      if (i % 1000 === 0) kept.push(o);
    }
    console.log(v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size);`;
  const newSpace = async (flags: string[]) => {
    const r = await run(["eval", ...flags, probe]);
    assertEquals(r.code, 0, r.stderr);
    return Number(r.stdout.trim()) / 2 ** 20;
  };
  assertEquals(await newSpace([V8_FLAGS_ARG]), 16);
  assertEquals(await newSpace([]), 32, "V8's own default changed: revisit the flag");
});

Deno.test("deno task start and deno task compile pass the flags", () => {
  assertOk(denoJson.tasks.start.includes(` ${V8_FLAGS_ARG} `), denoJson.tasks.start);
  assertOk(compileArgs(null, "/tmp/gateway").includes(V8_FLAGS_ARG));
});
