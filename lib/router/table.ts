/**
 * The route table: routes compiled once, sorted by specificity, bucketed by
 * first path segment. Matching walks only the bucket for the request's first
 * segment; the first route that fits wins.
 *
 * Specificity, highest first: explicit `priority`; length of the literal path
 * before any variable part, then of all its literal text; exact over prefix
 * over regex; exact host over wildcard host over none; more constraints
 * (methods, headers, query, version); then the order in the file.
 */
import type { MatchConfig } from "./schema.ts";
import { compileLinearRegex } from "../core/linear_regex.ts";
import { ANY_PATH, compilePath, compileRegexPath, type PathMatcher } from "./path_pattern.ts";
import type { VersionNegotiator, VersionSource } from "./version.ts";

export interface RouteRequest extends VersionSource {
  host: string;
}

export type RouteResult<T> =
  | {
    kind: "found";
    route: T;
    params: Record<string, string> | null;
    matchedLength: number;
    version: string | null;
  }
  | { kind: "not_found" }
  | { kind: "method_not_allowed"; allow: string }
  | { kind: "unsupported_version"; requested: string }
  | { kind: "repeated"; field: string };

type Predicate = (r: RouteRequest) => boolean;

interface CompiledMatch<T> {
  payload: T;
  order: number;
  priority: number;
  path: PathMatcher;
  hostRank: number;
  hostLength: number;
  host: Predicate | null;
  methods: ReadonlySet<string> | null;
  allow: string[];
  versions: ReadonlySet<string> | null;
  predicates: Predicate[];
  /** Fields and query parameters matched by value, which a request must not repeat (null: none). */
  singleValued: SingleValued | null;
  constraints: number;
}

export interface RouteInput<T> {
  payload: T;
  match: MatchConfig;
  priority?: number;
}

function compileHost(hosts: string[]): { test: Predicate; rank: number; length: number } {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  // As requests' hosts are compared (hostOf): no port, no trailing dot.
  const names = hosts.map((h) => h.toLowerCase().replace(/:\d+$/, "").replace(/\.$/, ""));
  for (const h of names) {
    if (h.startsWith("*.")) suffixes.push(h.slice(1));
    else exact.add(h);
  }
  return {
    rank: suffixes.length ? 1 : 2,
    // Of the names as compared: a port or trailing dot makes no wildcard more specific.
    length: Math.max(...names.map((h) => h.length)),
    test: (r) => {
      if (exact.has(r.host)) return true;
      for (const s of suffixes) {
        if (r.host.endsWith(s) && r.host.length > s.length) return true;
      }
      return false;
    },
  };
}

type ValueMatcher = string | { regex: string } | { present: boolean };

/**
 * Names a route matches by value. Repeated, a field or parameter has one value
 * for the route (the joined field, the first parameter) and another for an
 * upstream that reads the first field or the last parameter: such a request is
 * refused rather than routed on one reading.
 */
interface SingleValued {
  /** Lower-case field names, and as configured (for the refusal). */
  headers: [string, string][];
  query: string[];
}

function singleValuedOf(m: MatchConfig): SingleValued | null {
  const byValue = ([, v]: [string, ValueMatcher]) => typeof v === "string" || "regex" in v;
  const headers = Object.entries(m.headers ?? {}).filter(byValue)
    .map(([name]): [string, string] => [name.toLowerCase(), name]);
  const query = Object.entries(m.query ?? {}).filter(byValue).map(([name]) => name);
  return headers.length + query.length > 0 ? { headers, query } : null;
}

/** What `r` repeats of the names in `s` (`X-Role field`, `query parameter role`), or null. */
function repeatedIn(s: SingleValued, r: RouteRequest): string | null {
  const list = r.headers.list;
  for (const [lower, name] of s.headers) {
    let seen = 0;
    for (let i = 0; i < list.length; i++) {
      if (list[i]![0] === lower && ++seen > 1) return `${name} field`;
    }
  }
  for (const name of s.query) {
    if (r.queryParams.getAll(name).length > 1) return `query parameter ${name}`;
  }
  return null;
}

function valueTest(m: ValueMatcher): (v: string | null) => boolean {
  if (typeof m === "string") return (v) => v === m;
  if ("regex" in m) {
    const re = compileLinearRegex(m.regex);
    return (v) => v !== null && re.test(v);
  }
  return m.present ? (v) => v !== null : (v) => v === null;
}

function compile<T>(input: RouteInput<T>, order: number): CompiledMatch<T> {
  const m = input.match;
  const path = m.path_exact !== undefined
    ? compilePath("exact", m.path_exact)
    : m.path !== undefined
    ? compilePath("prefix", m.path)
    : m.path_regex !== undefined
    ? compileRegexPath(m.path_regex)
    : ANY_PATH;
  const predicates: Predicate[] = [];
  for (const [name, matcher] of Object.entries(m.headers ?? {})) {
    const lower = name.toLowerCase();
    const test = valueTest(matcher);
    predicates.push((r) => test(r.headers.get(lower)));
  }
  for (const [name, matcher] of Object.entries(m.query ?? {})) {
    const test = valueTest(matcher);
    predicates.push((r) => test(r.queryParams.get(name)));
  }
  const host = m.host ? compileHost(m.host) : null;
  const methods = m.methods ? new Set<string>(m.methods) : null;
  if (methods?.has("GET")) methods.add("HEAD");
  return {
    payload: input.payload,
    order,
    priority: input.priority ?? 0,
    path,
    host: host?.test ?? null,
    hostRank: host?.rank ?? 0,
    hostLength: host?.length ?? 0,
    methods,
    allow: methods ? [...methods] : [],
    versions: m.version ? new Set(m.version) : null,
    predicates,
    singleValued: singleValuedOf(m),
    constraints: predicates.length + (methods ? 1 : 0) + (m.version ? 1 : 0),
  };
}

const KIND_RANK = { exact: 3, prefix: 2, regex: 1, any: 0 } as const;

function bySpecificity<T>(a: CompiledMatch<T>, b: CompiledMatch<T>): number {
  return b.priority - a.priority ||
    b.path.literalLength - a.path.literalLength ||
    b.path.literalTotal - a.path.literalTotal ||
    KIND_RANK[b.path.kind] - KIND_RANK[a.path.kind] ||
    b.hostRank - a.hostRank ||
    b.hostLength - a.hostLength ||
    b.constraints - a.constraints ||
    a.order - b.order;
}

/**
 * Up to this many first segments, a request's bucket is found by comparing
 * its segment in place: taken out of the path it is a fresh string, and a
 * Map hashes a fresh string with a call into V8's runtime.
 */
const COMPARED_BUCKETS = 8;

interface Bucket<T> {
  segment: string;
  routes: CompiledMatch<T>[];
}

export class RouteTable<T> {
  private readonly buckets = new Map<string, CompiledMatch<T>[]>();
  private readonly compared: Bucket<T>[] | null;
  private readonly generic: CompiledMatch<T>[];
  readonly size: number;

  constructor(routes: RouteInput<T>[], private readonly versions: VersionNegotiator | null) {
    const all = routes.map(compile).sort(bySpecificity);
    this.size = all.length;
    this.generic = all.filter((r) => r.path.firstSegment === null);
    for (const r of all) {
      const seg = r.path.firstSegment;
      if (seg !== null && !this.buckets.has(seg)) {
        this.buckets.set(
          seg,
          all.filter((x) => x.path.firstSegment === seg || x.path.firstSegment === null),
        );
      }
    }
    this.compared = this.buckets.size <= COMPARED_BUCKETS
      ? [...this.buckets].map(([segment, routes]) => ({ segment, routes }))
      : null;
  }

  /** The routes that can match `path`: its first segment's bucket, else those without one. */
  private candidatesOf(path: string): CompiledMatch<T>[] {
    const slash = path.indexOf("/", 1);
    const end = slash < 0 ? path.length : slash;
    const compared = this.compared;
    if (compared === null) return this.buckets.get(path.slice(1, end)) ?? this.generic;
    for (let i = 0; i < compared.length; i++) {
      const b = compared[i]!;
      if (b.segment.length === end - 1 && path.startsWith(b.segment, 1)) return b.routes;
    }
    return this.generic;
  }

  match(req: RouteRequest): RouteResult<T> {
    const path = req.path;
    const candidates = this.candidatesOf(path);
    let allow: Set<string> | null = null;
    let version: string | null | undefined;
    let requested: string | null = null;
    let refusedVersion = false;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      const pm = c.path.match(path);
      if (pm === null) continue;
      if (c.host !== null && !c.host(req)) continue;
      if (c.singleValued !== null) {
        const repeated = repeatedIn(c.singleValued, req);
        if (repeated !== null) return { kind: "repeated", field: repeated };
      }
      if (c.versions !== null && this.versions !== null && version === undefined) {
        // Read once per request, as soon as a versioned route covers its path and host.
        const reading = this.versions.read(req);
        if (reading !== null && typeof reading === "object") {
          return { kind: "repeated", field: reading.repeated };
        }
        requested = reading;
        version = this.versions.resolve(requested);
      }
      let ok = true;
      for (let j = 0; j < c.predicates.length; j++) {
        if (!c.predicates[j]!(req)) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      // Read above for every versioned route when versioning is configured.
      if (c.versions !== null && version !== undefined) {
        if (version === null) {
          refusedVersion = true;
          continue;
        }
        if (!c.versions.has(version)) continue;
      }
      if (c.methods !== null && !c.methods.has(req.method)) {
        allow ??= new Set();
        for (const m of c.allow) allow.add(m);
        continue;
      }
      return {
        kind: "found",
        route: c.payload,
        params: pm.params,
        matchedLength: pm.length,
        version: version ?? null,
      };
    }
    if (refusedVersion && requested !== null) return { kind: "unsupported_version", requested };
    if (allow) return { kind: "method_not_allowed", allow: [...allow].sort().join(", ") };
    if (this.versions?.config.sources.includes("path")) {
      // `/api/v9/users` matches no route at all: say which versions exist.
      const named = this.versions.fromPath(path);
      if (named !== null && !this.versions.supportedSet.has(named)) {
        return { kind: "unsupported_version", requested: named };
      }
    }
    return { kind: "not_found" };
  }
}
