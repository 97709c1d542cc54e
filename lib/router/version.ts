/**
 * API version negotiation. The requested version is read from the path
 * (`/v2/...`), a header (`X-API-Version: 2`), the Accept media type
 * (`application/vnd.acme.v2+json`) or a query parameter, first found wins.
 *
 * Every versioned route matches the version header and parameter by value, so
 * like any field a route matches by value they must not be repeated: the
 * router would read one value (the joined field, the first parameter) and an
 * upstream perhaps another. Such a request is refused, never routed.
 */
import type { HeaderFields } from "../core/header_fields.ts";
import type { QueryReader } from "../core/query_params.ts";
import type { VersioningConfig } from "./schema.ts";

export interface VersionSource {
  method: string;
  path: string;
  /** The request's header fields (lower-case names). */
  headers: HeaderFields;
  queryParams: QueryReader;
}

/** A version field or parameter a request repeats, named for the refusal (`X-API-Version field`). */
export interface RepeatedVersion {
  readonly repeated: string;
}

const PATH_VERSION = /(?:^|\/)v(\d+(?:\.\d+)?)(?=\/|$)/i;
const VENDOR_TYPE = "application/vnd.";
const SUBTYPE_VERSION = /\.v(\d+(?:\.\d+)?)/i;
/** A weight of 0 among a range's parameters: "not acceptable" (RFC 9110 §12.4.2). */
const REFUSED = /;\s*q\s*=\s*0(?:\.0{0,3})?\s*(?:;|$)/i;

/**
 * The version an `Accept` field names in a vendor media type
 * (`application/vnd.acme.v2+json` is 2): the first `.vN` of the first such type
 * that has one, passing over a type the client refuses (`;q=0`). Each media
 * range is read once: one regular expression over the whole field, unanchored,
 * began a scan at every `application/vnd.` it held, n^2 on a field that repeats
 * it (84 ms for 64 KiB).
 */
export function acceptedVersion(accept: string): string | null {
  for (const range of accept.split(",")) {
    const semi = range.indexOf(";");
    const type = (semi < 0 ? range : range.slice(0, semi)).trim();
    if (type.length <= VENDOR_TYPE.length) continue;
    if (type.slice(0, VENDOR_TYPE.length).toLowerCase() !== VENDOR_TYPE) continue;
    if (semi >= 0 && REFUSED.test(range.slice(semi))) continue;
    const m = SUBTYPE_VERSION.exec(type.slice(VENDOR_TYPE.length));
    if (m) return m[1]!;
  }
  return null;
}

export function cleanVersion(v: string): string {
  return v.trim().replace(/^v/i, "");
}

export class VersionNegotiator {
  readonly supported: readonly string[];
  readonly supportedSet: ReadonlySet<string>;
  readonly latest: string;
  readonly fallback: string;
  readonly supportedHeader: string;
  readonly headerValue: string;
  private readonly header: string;
  /** Whether `sources` reads the header, the query parameter. */
  private readonly readsHeader: boolean;
  private readonly readsQuery: boolean;
  private readonly repeatedHeader: RepeatedVersion;
  private readonly repeatedQuery: RepeatedVersion;

  constructor(readonly config: VersioningConfig, versions: Iterable<string>) {
    const all = [...new Set(versions)].sort((a, b) =>
      a.localeCompare(b, undefined, { numeric: true })
    );
    this.supported = all;
    this.supportedSet = new Set(all);
    this.latest = all[all.length - 1] ?? "1";
    this.fallback = config.default !== undefined ? cleanVersion(config.default) : this.latest;
    this.header = config.header.toLowerCase();
    this.readsHeader = config.sources.includes("header");
    this.readsQuery = config.sources.includes("query");
    this.repeatedHeader = { repeated: `${config.header} field` };
    this.repeatedQuery = { repeated: `query parameter ${config.query}` };
    this.supportedHeader = config.supported_header;
    this.headerValue = all.join(", ");
  }

  /** A `/v2/` style version in the path, or null. */
  fromPath(path: string): string | null {
    const v = PATH_VERSION.exec(path)?.[1];
    return v ? cleanVersion(v) : null;
  }

  /**
   * The version the request names (null: none), or the version header or
   * query parameter it repeats, whichever source would decide: the header and
   * the parameter are read in one pass each, which counts them too.
   */
  read(src: VersionSource): string | null | RepeatedVersion {
    let header: string | null = null;
    if (this.readsHeader) {
      const list = src.headers.list;
      for (let i = 0; i < list.length; i++) {
        if (list[i]![0] !== this.header) continue;
        if (header !== null) return this.repeatedHeader;
        header = list[i]![1];
      }
    }
    let query: string | null = null;
    if (this.readsQuery) {
      const all = src.queryParams.getAll(this.config.query);
      if (all.length > 1) return this.repeatedQuery;
      query = all[0] ?? null;
    }
    return this.requested(src, header, query);
  }

  /** The version the request names, first source first, or null. */
  private requested(
    src: VersionSource,
    header: string | null,
    query: string | null,
  ): string | null {
    for (const s of this.config.sources) {
      let v: string | null | undefined = null;
      switch (s) {
        case "path":
          v = this.fromPath(src.path);
          break;
        case "header":
          v = header;
          break;
        case "accept": {
          const accept = src.headers.get("accept");
          v = accept ? acceptedVersion(accept) : null;
          break;
        }
        case "query":
          v = query;
          break;
      }
      if (v) return cleanVersion(v);
    }
    return null;
  }

  /** The version to serve: the requested one, or the default; null if it must be refused. */
  resolve(requested: string | null): string | null {
    if (requested === null) return this.fallback;
    if (this.supportedSet.has(requested)) return requested;
    switch (this.config.on_unknown) {
      case "default":
        return this.fallback;
      case "latest":
        return this.latest;
      default:
        return null;
    }
  }
}
