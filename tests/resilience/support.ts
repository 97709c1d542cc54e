/** Small helpers shared by the resilience tests. */
import type { TestGateway } from "../helpers/gateway.ts";

/** Sends one request and returns its status, discarding the body. */
export async function status(url: string, init?: RequestInit): Promise<number> {
  const res = await fetch(url, init);
  await res.body?.cancel();
  return res.status;
}

/** Sends `n` requests one after the other; returns their statuses. */
export async function statuses(url: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await status(url));
  return out;
}

/** `GET /upstreams/{name}` from the admin API. */
// deno-lint-ignore no-explicit-any
export async function upstreamView(g: TestGateway, name: string): Promise<any> {
  const res = await fetch(`${g.admin}/upstreams/${name}`);
  if (res.status !== 200) throw new Error(`GET /upstreams/${name}: ${res.status}`);
  return await res.json();
}

/** Polls until `cond` holds; returns how long it took. */
export async function until(cond: () => Promise<boolean>, limitMs = 5_000): Promise<number> {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > limitMs) throw new Error(`condition not met in ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return performance.now() - t0;
}

/** Config body: upstream `api` with one target (plus `upstream` lines), and one route to it. */
export function oneUpstream(url: string, upstream = "", route = ""): string {
  return `
upstreams:
  api:
    targets: [ { url: "${url}" } ]
${upstream}
routes:
  - { name: api, match: { path: / }, upstream: api ${route} }
`;
}
