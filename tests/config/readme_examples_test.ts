/**
 * The README's YAML examples are what users copy: each must load as the README
 * shows it. A fragment is completed with the upstreams and auth providers it
 * names but does not define (never overriding what it writes), then loaded with
 * the same validation as a config file.
 */
import { parse, stringify } from "yaml";
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { parseConfig } from "../../lib/config/load.ts";
import { ConfigError, formatIssue } from "../../lib/config/issues.ts";

const README = new URL("../../README.md", import.meta.url);

/** What fragments refer to without defining. */
const BASE = {
  upstreams: Object.fromEntries(
    ["users", "orders", "legacy", "backoffice", "reports"].map((
      name,
    ) => [name, { targets: [{ url: "http://127.0.0.1:9" }] }]),
  ),
  auth: { keys: { kind: "api_key", header: "X-API-Key" } },
};

interface Example {
  line: number;
  text: string;
}

function yamlExamples(markdown: string): Example[] {
  const out: Example[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```yaml") continue;
    const start = i + 1;
    while (lines[++i] !== "```") if (i >= lines.length) throw new Error("unclosed yaml block");
    out.push({ line: start + 1, text: lines.slice(start, i).join("\n") });
  }
  return out;
}

/** The example's own keys win; a top-level mapping it shares with the base gains the base's entries. */
function completed(example: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...example };
  for (const [key, value] of Object.entries(BASE)) {
    const own = example[key] as Record<string, unknown> | undefined;
    out[key] = { ...value, ...own };
  }
  return out;
}

Deno.test("every gateway config example in the README loads", async () => {
  const examples = yamlExamples(await Deno.readTextFile(README));
  assertOk(examples.length >= 10, `found ${examples.length} yaml blocks`);
  const failures: string[] = [];
  let loaded = 0;
  for (const ex of examples) {
    // The Prometheus scrape config is not the gateway's.
    if (ex.text.startsWith("# prometheus.yml")) continue;
    const text = stringify(completed(parse(ex.text) ?? {}));
    try {
      await parseConfig(text, `README.md:${ex.line}`, (name) => `test-${name.toLowerCase()}`);
      loaded++;
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      failures.push(`README.md line ${ex.line}:\n  ${e.issues.map(formatIssue).join("\n  ")}`);
    }
  }
  assertEquals(failures, []);
  assertOk(loaded >= 10);
});
