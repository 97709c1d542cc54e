/**
 * Checks that need the whole configuration: references between sections,
 * duplicates, clashes. Each yields issues with a key path; the loader positions them.
 */
import type { GatewayConfig } from "./schema.ts";
import { didYouMean, type KeyPath } from "./issues.ts";
import { asyncRouteIssues } from "../jobs/semantics.ts";

export interface SemanticIssue {
  path: KeyPath;
  message: string;
  key?: boolean;
}

type Check = (c: GatewayConfig) => SemanticIssue[];

const routeReferences: Check = (c) => {
  const out: SemanticIssue[] = [];
  const upstreams = Object.keys(c.upstreams);
  const providers = Object.keys(c.auth);
  const ref = (name: string, path: KeyPath) => {
    // Own names only: `in` would accept "constructor" or "toString".
    if (!Object.hasOwn(c.upstreams, name)) {
      out.push({ path, message: `unknown upstream "${name}"${didYouMean(name, upstreams)}` });
    }
  };
  c.routes.forEach((r, i) => {
    if (r.upstream) ref(r.upstream, ["routes", i, "upstream"]);
    r.split?.forEach((s, j) => ref(s.upstream, ["routes", i, "split", j, "upstream"]));
    r.aggregate?.calls.forEach((s, j) =>
      ref(s.upstream, ["routes", i, "aggregate", "calls", j, "upstream"])
    );
    if (r.split && r.split.every((s) => s.weight === 0)) {
      out.push({ path: ["routes", i, "split"], message: "expected at least one weight above 0" });
    }
    r.auth?.forEach((p, j) => {
      if (!Object.hasOwn(c.auth, p)) {
        out.push({
          path: ["routes", i, "auth", j],
          message: `unknown auth provider "${p}"${didYouMean(p, providers)}`,
        });
      }
    });
    if (r.scopes?.length && !r.auth?.length) {
      out.push({
        path: ["routes", i, "scopes"],
        message: "scopes need auth: list the providers that establish the caller",
      });
    }
    if (r.match.version && !c.versioning) {
      out.push({
        path: ["routes", i, "match", "version"],
        message: "match.version needs a top-level versioning section",
      });
    }
  });
  return out;
};

/** A default no route serves would answer every request that names no version 404. */
const versionDefault: Check = (c) => {
  const wanted = c.versioning?.default;
  const served = new Set(c.routes.flatMap((r) => r.match.version ?? []));
  if (wanted === undefined || served.size === 0 || served.has(wanted)) return [];
  const list = [...served].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  return [{
    path: ["versioning", "default"],
    message: `no route serves version "${wanted}" (match.version lists ${list.join(", ")})`,
  }];
};

const duplicates: Check = (c) => {
  const out: SemanticIssue[] = [];
  const seen = (items: { name: string; path: KeyPath }[], what: string) => {
    const first = new Map<string, number>();
    items.forEach(({ name, path }, i) => {
      const prev = first.get(name);
      if (prev !== undefined) {
        out.push({ path, message: `duplicate ${what} "${name}" (also at index ${prev})` });
      } else first.set(name, i);
    });
  };
  seen(c.routes.map((r, i) => ({ name: r.name, path: ["routes", i, "name"] })), "route name");
  seen(
    c.listeners.map((l, i) => ({ name: l.name, path: ["listeners", i, "name"] })),
    "listener name",
  );
  seen(c.consumers.map((x, i) => ({ name: x.id, path: ["consumers", i, "id"] })), "consumer id");
  return out;
};

const portClashes: Check = (c) => {
  const out: SemanticIssue[] = [];
  const bound: { host: string; port: number; what: string }[] = [];
  const overlaps = (a: string, b: string) =>
    a === b || a === "0.0.0.0" || b === "0.0.0.0" || a === "::" || b === "::";
  const claim = (host: string, port: number, what: string, path: KeyPath) => {
    if (port === 0) return;
    const clash = bound.find((b) => b.port === port && overlaps(b.host, host));
    if (clash) {
      out.push({ path, message: `port ${port} is already used by ${clash.what}` });
    } else bound.push({ host, port, what });
  };
  c.listeners.forEach((l, i) =>
    claim(l.host, l.port, `listener "${l.name}"`, ["listeners", i, "port"])
  );
  if (c.admin) claim(c.admin.host, c.admin.port, "the admin listener", ["admin", "port"]);
  return out;
};

const consumerReferences: Check = (c) => {
  const out: SemanticIssue[] = [];
  const plans = Object.keys(c.plans);
  c.consumers.forEach((x, i) => {
    if (x.plan && !Object.hasOwn(c.plans, x.plan)) {
      out.push({
        path: ["consumers", i, "plan"],
        message: `unknown plan "${x.plan}"${didYouMean(x.plan, plans)}`,
      });
    }
  });
  return out;
};

const authProviders: Check = (c) => {
  const out: SemanticIssue[] = [];
  for (const [name, p] of Object.entries(c.auth)) {
    if (p.kind !== "jwt") continue;
    const sources = [p.jwks_url, p.jwks_file, p.public_key_file, p.secret].filter(Boolean);
    if (sources.length !== 1) {
      out.push({
        path: ["auth", name],
        message: "expected exactly one of jwks_url, jwks_file, public_key_file or secret",
      });
    }
    const hmac = p.algorithms.filter((a) => a.startsWith("HS"));
    if (p.secret && hmac.length !== p.algorithms.length) {
      out.push({
        path: ["auth", name, "algorithms"],
        message: "a shared secret allows only HS256, HS384 or HS512",
      });
    }
    if (!p.secret && hmac.length > 0) {
      out.push({
        path: ["auth", name, "algorithms"],
        message: "HMAC algorithms need a secret; with public keys list only RS*, PS*, ES* or EdDSA",
      });
    }
  }
  return out;
};

const storeNeeds: Check = (c) => {
  const out: SemanticIssue[] = [];
  c.routes.forEach((r, i) => {
    if (r.async && c.store.kind !== "redis") {
      out.push({
        path: ["routes", i, "async"],
        message: "async routes need store.kind: redis (jobs live in Redis Streams)",
      });
    }
  });
  for (const [name, u] of Object.entries(c.upstreams)) {
    if (u.circuit_breaker?.shared && c.store.kind !== "redis") {
      out.push({
        path: ["upstreams", name, "circuit_breaker", "shared"],
        message: "a shared circuit breaker needs store.kind: redis (instances share it there)",
      });
    }
  }
  return out;
};

const proxyProtocol: Check = (c) =>
  c.security.trusted_proxies.length > 0 ? [] : c.listeners.flatMap((l, i) =>
    l.proxy_protocol
      ? [{
        path: ["listeners", i, "proxy_protocol"],
        message:
          "proxy_protocol needs security.trusted_proxies: the load balancers allowed to send the PROXY header",
      }]
      : []
  );

export const SEMANTIC_CHECKS: Check[] = [
  routeReferences,
  versionDefault,
  duplicates,
  portClashes,
  consumerReferences,
  authProviders,
  storeNeeds,
  asyncRouteIssues,
  proxyProtocol,
];

export function semanticIssues(c: GatewayConfig): SemanticIssue[] {
  return SEMANTIC_CHECKS.flatMap((check) => check(c));
}
