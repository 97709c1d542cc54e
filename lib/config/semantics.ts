/**
 * Checks that need the whole configuration: references between sections,
 * duplicates, clashes. Each yields issues with a key path; the loader positions them.
 * They run on the parts that passed the schema (see partial.ts), so each check
 * skips what it cannot judge: an INVALID entry, or a section it reads that failed.
 */
import { didYouMean, type KeyPath } from "./issues.ts";
import {
  allValid,
  defines,
  INVALID,
  namesIn,
  type PartialConfig,
  validEntries,
  validItems,
} from "./partial.ts";
import { asyncRouteIssues } from "../jobs/semantics.ts";

export interface SemanticIssue {
  path: KeyPath;
  message: string;
  key?: boolean;
}

type Check = (c: PartialConfig) => SemanticIssue[];

const routeReferences: Check = (c) => {
  const out: SemanticIssue[] = [];
  const ref = (name: string, path: KeyPath) => {
    if (!defines(c.upstreams, name)) {
      const hint = didYouMean(name, namesIn(c.upstreams));
      out.push({ path, message: `unknown upstream "${name}"${hint}` });
    }
  };
  for (const { item: r, i } of validItems(c.routes)) {
    if (r.upstream) ref(r.upstream, ["routes", i, "upstream"]);
    r.split?.forEach((s, j) => ref(s.upstream, ["routes", i, "split", j, "upstream"]));
    r.aggregate?.calls.forEach((s, j) =>
      ref(s.upstream, ["routes", i, "aggregate", "calls", j, "upstream"])
    );
    if (r.split && r.split.every((s) => s.weight === 0)) {
      out.push({ path: ["routes", i, "split"], message: "expected at least one weight above 0" });
    }
    r.auth?.forEach((p, j) => {
      if (!defines(c.auth, p)) {
        out.push({
          path: ["routes", i, "auth", j],
          message: `unknown auth provider "${p}"${didYouMean(p, namesIn(c.auth))}`,
        });
      }
    });
    if (r.scopes?.length && !r.auth?.length) {
      out.push({
        path: ["routes", i, "scopes"],
        message: "scopes need auth: list the providers that establish the caller",
      });
    }
    if (r.match.version && c.versioning === undefined) {
      out.push({
        path: ["routes", i, "match", "version"],
        message: "match.version needs a top-level versioning section",
      });
    }
  }
  return out;
};

/** A default no route serves would answer every request that names no version 404. */
const versionDefault: Check = (c) => {
  // A route that failed the schema may be the one that serves the default.
  if (c.versioning === INVALID || !allValid(c.routes)) return [];
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
  /** `i` is the item's index in the file: items that failed the schema are not in `items`. */
  const seen = (
    items: { name: string; i: number }[],
    what: string,
    path: (i: number) => KeyPath,
  ) => {
    const first = new Map<string, number>();
    for (const { name, i } of items) {
      const prev = first.get(name);
      if (prev !== undefined) {
        out.push({ path: path(i), message: `duplicate ${what} "${name}" (also at index ${prev})` });
      } else first.set(name, i);
    }
  };
  seen(
    validItems(c.routes).map(({ item, i }) => ({ name: item.name, i })),
    "route name",
    (i) => ["routes", i, "name"],
  );
  seen(
    validItems(c.listeners).map(({ item, i }) => ({ name: item.name, i })),
    "listener name",
    (i) => ["listeners", i, "name"],
  );
  seen(
    validItems(c.consumers).map(({ item, i }) => ({ name: item.id, i })),
    "consumer id",
    (i) => ["consumers", i, "id"],
  );
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
  for (const { item: l, i } of validItems(c.listeners)) {
    claim(l.host, l.port, `listener "${l.name}"`, ["listeners", i, "port"]);
  }
  if (c.admin && c.admin !== INVALID) {
    claim(c.admin.host, c.admin.port, "the admin listener", ["admin", "port"]);
  }
  return out;
};

const consumerReferences: Check = (c) => {
  const out: SemanticIssue[] = [];
  for (const { item: x, i } of validItems(c.consumers)) {
    if (x.plan && !defines(c.plans, x.plan)) {
      out.push({
        path: ["consumers", i, "plan"],
        message: `unknown plan "${x.plan}"${didYouMean(x.plan, namesIn(c.plans))}`,
      });
    }
  }
  return out;
};

const authProviders: Check = (c) => {
  const out: SemanticIssue[] = [];
  for (const [name, p] of validEntries(c.auth)) {
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
  const store = c.store;
  if (store === INVALID) return out;
  for (const { item: r, i } of validItems(c.routes)) {
    if (r.async && store.kind !== "redis") {
      out.push({
        path: ["routes", i, "async"],
        message: "async routes need store.kind: redis (jobs live in Redis Streams)",
      });
    }
  }
  for (const [name, u] of validEntries(c.upstreams)) {
    if (u.circuit_breaker?.shared && store.kind !== "redis") {
      out.push({
        path: ["upstreams", name, "circuit_breaker", "shared"],
        message: "a shared circuit breaker needs store.kind: redis (instances share it there)",
      });
    }
  }
  return out;
};

/**
 * While the gateway traces, the trace fields it sends upstream are its own hop's:
 * a static copy on an upstream would go out beside them, a second traceparent.
 */
const traceFields: Check = (c) => {
  if (c.observe === INVALID || !c.observe.tracing.enabled) return [];
  const out: SemanticIssue[] = [];
  for (const [name, u] of validEntries(c.upstreams)) {
    for (const h of Object.keys(u.headers)) {
      const lower = h.toLowerCase();
      if (lower !== "traceparent" && lower !== "tracestate") continue;
      out.push({
        path: ["upstreams", name, "headers", h],
        key: true,
        message: `${h} is the gateway's own while observe.tracing.enabled is true ` +
          "(set it to false to pass the caller's trace fields on unchanged)",
      });
    }
  }
  return out;
};

/** What the gateway writes on every request it sends upstream, besides the request id. */
const FORWARDING_FIELDS = new Set([
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "via",
]);

/**
 * X-Forwarded-*, Via and the request id are the gateway's own on every request:
 * a static copy on an upstream went out beside them, a second line (an upstream
 * reading the joined values took `http, https`, or two request ids).
 */
const forwardingFields: Check = (c) => {
  const requestId = c.server === INVALID ? null : c.server.request_id_header.toLowerCase();
  const out: SemanticIssue[] = [];
  for (const [name, u] of validEntries(c.upstreams)) {
    for (const h of Object.keys(u.headers)) {
      const lower = h.toLowerCase();
      if (!FORWARDING_FIELDS.has(lower) && lower !== requestId) continue;
      out.push({
        path: ["upstreams", name, "headers", h],
        key: true,
        message: `${h} is the gateway's own: it writes it on every request it sends upstream` +
          (lower === requestId ? " (server.request_id_header)" : ""),
      });
    }
  }
  return out;
};

const proxyProtocol: Check = (c) =>
  c.security === INVALID || c.security.trusted_proxies.length > 0
    ? []
    : validItems(c.listeners).flatMap(({ item: l, i }) =>
      l.proxy_protocol
        ? [{
          path: ["listeners", i, "proxy_protocol"],
          message:
            "proxy_protocol needs security.trusted_proxies: the load balancers allowed to send the PROXY header",
        }]
        : []
    );

/**
 * A route path the security settings make unreachable: request paths are
 * matched with `//` merged (merge_slashes), and refused with a `;` segment
 * parameter (unless allow_path_parameters).
 */
const unreachablePaths: Check = (c) => {
  if (c.security === INVALID) return [];
  const { merge_slashes: merged, allow_path_parameters: params } = c.security;
  const out: SemanticIssue[] = [];
  for (const { item: r, i } of validItems(c.routes)) {
    for (const key of ["path", "path_exact"] as const) {
      const path = r.match[key];
      if (path === undefined) continue;
      const why = merged && path.includes("//")
        ? "// is merged in request paths (security.merge_slashes)"
        : !params && path.includes(";")
        ? "a ; parameter is refused in request paths (security.allow_path_parameters)"
        : null;
      if (why !== null) {
        out.push({
          path: ["routes", i, "match", key],
          message: `expected a path a request can have: ${why}`,
        });
      }
    }
  }
  return out;
};

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
  unreachablePaths,
  traceFields,
  forwardingFields,
];

export function semanticIssues(c: PartialConfig): SemanticIssue[] {
  return SEMANTIC_CHECKS.flatMap((check) => check(c));
}
