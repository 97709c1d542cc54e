/**
 * README.md against config/gateway.schema.json: every key the schema has is
 * named in the README, every key a README key table names exists, and every
 * default the README writes as `` `key` (value) `` is the schema's default for
 * a key of that name. The schema is the generated file users' editors load (a
 * test elsewhere fails when it is stale).
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";

const README = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
const SCHEMA = JSON.parse(
  await Deno.readTextFile(new URL("../../config/gateway.schema.json", import.meta.url)),
);

// deno-lint-ignore no-explicit-any
type Node = any;

/** Every property of the schema: leaf name → the dotted paths it appears at and their defaults. */
function schemaKeys(): Map<string, { paths: string[]; defaults: unknown[] }> {
  const out = new Map<string, { paths: string[]; defaults: unknown[] }>();
  const defs: Record<string, Node> = SCHEMA.$defs ?? SCHEMA.definitions ?? {};
  const walk = (n: Node, path: string, refs: Set<string>): void => {
    if (!n || typeof n !== "object") return;
    if (typeof n.$ref === "string") {
      const name = n.$ref.replace(/^#\/(\$defs|definitions)\//, "");
      if (!refs.has(name)) walk(defs[name], path, new Set([...refs, name]));
    }
    for (const [k, v] of Object.entries<Node>(n.properties ?? {})) {
      const p = path ? `${path}.${k}` : k;
      const e = out.get(k) ?? { paths: [], defaults: [] };
      e.paths.push(p);
      if (v && typeof v === "object" && "default" in v) e.defaults.push(v.default);
      out.set(k, e);
      walk(v, p, refs);
    }
    for (const list of [n.anyOf, n.oneOf, n.allOf]) for (const x of list ?? []) walk(x, path, refs);
    if (n.items) walk(n.items, `${path}[]`, refs);
    if (n.additionalProperties && typeof n.additionalProperties === "object") {
      walk(n.additionalProperties, `${path}.*`, refs);
    }
  };
  walk(SCHEMA, "", new Set());
  return out;
}

const KEYS = schemaKeys();

Deno.test("readme keys: the schema walk finds the config's keys", () => {
  // Guards the walk itself: a schema layout it cannot read would make the other tests vacuous.
  assertOk(KEYS.size > 200, `found ${KEYS.size} key names`);
  for (
    const p of ["listeners[].tls.min_version", "routes[].cache.stale_if_error_s", "store.redis.url"]
  ) {
    const leaf = p.split(".").pop()!;
    assertOk(KEYS.get(leaf)?.paths.includes(p), `${p} not found by the walk`);
  }
});

Deno.test("readme keys: every key of the schema is named in the README", () => {
  const missing: string[] = [];
  for (const [name, { paths }] of KEYS) {
    const esc = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    // `name`, `name: ...`, `{name}`, name: in a YAML block, or name in a `{ a, name, b }` summary.
    const named = new RegExp(`\`\\{?${esc}[\`:}]|\\b${esc}:|[{,] ${esc}[ ,}(]`).test(README);
    if (!named) missing.push(`${name} (${paths.join(", ")})`);
  }
  assertEquals(missing, [], "schema keys the README never names");
});

/** First-column `key` cells of the README's tables headed `| key ...`. */
function tableKeys(): { line: number; key: string }[] {
  const out: { line: number; key: string }[] = [];
  const lines = README.split("\n");
  let inKeyTable = false;
  for (const [i, line] of lines.entries()) {
    if (!line.startsWith("|")) {
      inKeyTable = false;
      continue;
    }
    if (/^\| key\s+\|/.test(line)) inKeyTable = true;
    else if (inKeyTable) {
      for (const m of line.split("|")[1]!.matchAll(/`([a-z_][a-z0-9_.\[\]]*)`/g)) {
        out.push({ line: i + 1, key: m[1]! });
      }
    }
  }
  return out;
}

Deno.test("readme keys: every key a README key table names exists in the schema", () => {
  const rows = tableKeys();
  assertOk(rows.length >= 15, `found ${rows.length} key table rows`);
  const unknown = rows.filter(({ key }) =>
    !key.replace(/\[\]/g, "").split(".").every((part) => KEYS.has(part))
  );
  assertEquals(unknown, [], "README key table rows naming no schema key");
});

/**
 * `` `key` (`value`) ``, `` `key` (30) `` or `` `key` (true: why) ``: how the README's tables and
 * summaries write a default. Prose such as `queue` (default 100) is not read: several keys share a
 * name, and some defaults are applied in code rather than in the schema.
 */
function writtenDefaults(): { line: number; key: string; value: string }[] {
  const out: { line: number; key: string; value: string }[] = [];
  for (const [i, line] of README.split("\n").entries()) {
    for (
      const m of line.matchAll(
        /`([a-z_][a-z0-9_]*)` \((?:`([^`]+)`|(-?[\d.]+|true|false|\[[^\]]*\]))[):]/g,
      )
    ) {
      if (KEYS.get(m[1]!)?.defaults.length) {
        out.push({ line: i + 1, key: m[1]!, value: (m[2] ?? m[3])! });
      }
    }
  }
  return out;
}

function render(v: unknown): string {
  return Array.isArray(v) ? `[${v.join(", ")}]` : String(v);
}

Deno.test("readme keys: every default the README writes as `key` (value) is the schema's", () => {
  const written = writtenDefaults();
  assertOk(written.length >= 15, `found ${written.length} written defaults`);
  const wrong = written.filter(({ key, value }) => {
    const defaults = KEYS.get(key)!.defaults.map(render);
    return !defaults.includes(value) && !defaults.includes(value.replace(/^\[|\]$/g, ""));
  }).map(({ line, key, value }) =>
    `README.md:${line}: ${key} (${value}); schema: ${
      KEYS.get(key)!.defaults.map(render).join(" | ")
    }`
  );
  assertEquals(wrong, [], "README defaults the schema does not have");
});
