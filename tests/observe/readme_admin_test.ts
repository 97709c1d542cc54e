/**
 * README.md against a running gateway and lib/core/errors.ts: the metrics table
 * against what /metrics exports, the admin endpoint tables against what the
 * admin listener serves, and the error code table against ERRORS.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { parsePromText } from "./prom_text.ts";
import { ERRORS } from "../../lib/core/errors.ts";
import { CLUSTER_FAMILIES } from "../../lib/cluster/cluster_metrics.ts";

const README = await Deno.readTextFile(new URL("../../README.md", import.meta.url));

/** The rows of the first table after `heading` (a line of the README), as lists of cells. */
function tableAfter(heading: string | RegExp, from = 0): string[][] {
  const lines = README.split("\n");
  let i = lines.findIndex((l, n) =>
    n >= from && (typeof heading === "string" ? l === heading : heading.test(l))
  );
  assertOk(i >= 0, `README has no ${heading}`);
  while (i < lines.length && !lines[i]!.startsWith("|")) i++;
  const rows: string[][] = [];
  for (i += 2; i < lines.length && lines[i]!.startsWith("|"); i++) {
    rows.push(lines[i]!.split("|").slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

const ticked = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

Deno.test("readme: the error code table is lib/core/errors.ts, code by code", () => {
  const documented = new Map<string, number>();
  for (const [status, code] of tableAfter("### Error codes")) {
    for (const c of ticked(code!)) documented.set(c, Number(status));
  }
  const actual = new Map(Object.entries(ERRORS).map(([c, e]) => [c, e.status as number]));
  assertEquals(Object.fromEntries(documented), Object.fromEntries(actual));
  // The auth section's refusal table must agree with it too.
  for (const [status, codes] of tableAfter("### Refusals")) {
    for (const c of ticked(codes!)) {
      assertEquals(
        [c, Number(status)],
        [c, actual.get(c)],
        `Refusals table: ${c} at ${status}`,
      );
    }
  }
});

Deno.test("readme: /metrics exports exactly the families the README lists, as typed", async () => {
  const documented = new Map<string, { type: string; labels: string[] }>();
  for (const [name, type, labels] of tableAfter("### Metrics")) {
    const n = ticked(name!)[0]!;
    documented.set(n, {
      type: type!,
      labels: labels!.split(",").map((l) => l.trim()).filter(Boolean).sort(),
    });
  }
  assertOk(documented.size >= 20, `the README lists ${documented.size} metrics`);

  const up = startUpstream(() => new Response("ok"));
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: a }
`));
  try {
    // A request, so that the per-request families have samples to check labels on.
    await (await fetch(`${g.url()}/r`)).body?.cancel();
    await (await fetch(`${g.url()}/nowhere`)).body?.cancel();
    const res = await fetch(`${g.admin}/metrics`);
    assertEquals(res.status, 200);
    const families = parsePromText(await res.text());
    const exported = [...families.keys()].filter((n) => /^(gateway|process)_/.test(n)).sort();
    // Only a cluster's main thread reports these (tests/deploy/worker_unresponsive_test.ts).
    const single = [...documented.keys()].filter((n) => !CLUSTER_FAMILIES.has(n));
    assertEquals(exported, single.sort(), "exported families vs README");
    for (const n of CLUSTER_FAMILIES) assertOk(documented.has(n), `the README does not list ${n}`);
    for (const [name, f] of families) {
      const doc = documented.get(name);
      if (!doc) continue;
      assertEquals([name, f.type], [name, doc.type], `type of ${name}`);
      const labels = new Set<string>();
      for (const s of f.samples) {
        for (const l of Object.keys(s.labels)) if (l !== "le") labels.add(l);
      }
      // Only samples show labels, and an empty one (`consumer` of an anonymous request) is left
      // out: every label seen must be one the README lists.
      const unlisted = [...labels].filter((l) => !doc.labels.includes(l));
      assertEquals([name, unlisted], [name, []], `labels of ${name} the README does not list`);
    }
  } finally {
    await g.close();
    await up.close();
  }
});

/** `METHOD /path/{param}` with parameter names dropped: `{key}` and `{key-or-sha256}` are one. */
const normal = (e: string) => e.replace(/\{[^}]*\}/g, "{}");

Deno.test("readme: the admin listener serves exactly the endpoints the README lists", async () => {
  const documented = new Set<string>();
  for (
    const heading of ["## Observability and the admin API", "### Keys and revocations at runtime"]
  ) {
    for (const [cell] of tableAfter(heading)) {
      for (const e of ticked(cell!)) {
        if (/^(GET|HEAD|POST|PUT|PATCH|DELETE) \//.test(e)) documented.add(normal(e));
      }
    }
  }
  assertOk(documented.size >= 10, `the README lists ${documented.size} admin endpoints`);

  const g = await startGateway(baseConfig("routes: []\n"));
  try {
    const registered = g.gw.admin.endpoints().map(normal);
    assertEquals([...new Set(registered)].sort(), [...documented].sort());
    // Each answers on the admin listener with its method: neither "no such endpoint" nor a 405.
    for (const e of registered) {
      const [method, path] = e.split(" ") as [string, string];
      const res = await fetch(`${g.admin}${path.replaceAll("{}", "x")}`, { method });
      const text = await res.text();
      assertOk(
        res.status !== 405 && !text.includes("No admin endpoint at"),
        `${e}: ${res.status} ${text}`,
      );
    }
  } finally {
    await g.close();
  }
});
