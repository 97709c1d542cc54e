/**
 * A real identity provider on loopback for auth tests: a JWKS endpoint whose
 * key set the test swaps (or takes down), and an RFC 7662 introspection
 * endpoint answering from a table of tokens. Keys are generated with jose.
 */
import { exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";

export interface SigningKey {
  readonly alg: string;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly jwk: JWK;
}

export async function signingKey(alg: string, kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...await exportJWK(publicKey), kid, alg, use: "sig" };
  return { alg, kid, privateKey, publicKey, jwk };
}

export function publicPem(key: SigningKey): Promise<string> {
  return exportSPKI(key.publicKey);
}

/** Signs `claims` with `key`; `header` overrides the protected header (kid, alg). */
export function sign(
  key: { alg: string; kid?: string; privateKey: CryptoKey | Uint8Array },
  claims: JWTPayload,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, ...(key.kid ? { kid: key.kid } : {}), ...header })
    .sign(key.privateKey);
}

export interface Introspected {
  active: boolean;
  [claim: string]: unknown;
}

export interface TestIdp {
  readonly url: string;
  readonly jwksUrl: string;
  readonly introspectUrl: string;
  /** Requests seen by each endpoint. */
  readonly hits: { jwks: number; introspect: number };
  /** Bodies of introspection requests and their Authorization headers. */
  readonly introspections: { body: string; authorization: string | null }[];
  keys: SigningKey[];
  /** Introspection answers by token; unknown tokens are inactive. */
  readonly tokens: Map<string, Introspected>;
  /** When true, every endpoint answers 503. */
  down: boolean;
  /** When set, introspection answers wait for this promise. */
  hold: Promise<void> | null;
  close(): Promise<void>;
}

export function startIdp(): TestIdp {
  const ac = new AbortController();
  const idp: Omit<TestIdp, "url" | "jwksUrl" | "introspectUrl" | "close"> = {
    hits: { jwks: 0, introspect: 0 },
    introspections: [],
    keys: [],
    tokens: new Map(),
    down: false,
    hold: null,
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/jwks") {
        idp.hits.jwks++;
        if (idp.down) return new Response("down", { status: 503 });
        return Response.json({ keys: idp.keys.map((k) => k.jwk) });
      }
      if (path === "/introspect" && req.method === "POST") {
        idp.hits.introspect++;
        const body = await req.text();
        idp.introspections.push({ body, authorization: req.headers.get("authorization") });
        if (idp.hold) await idp.hold;
        if (idp.down) return new Response("down", { status: 503 });
        const token = new URLSearchParams(body).get("token") ?? "";
        return Response.json(idp.tokens.get(token) ?? { active: false });
      }
      return new Response("not found", { status: 404 });
    },
  );
  const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  return Object.assign(idp, {
    url,
    jwksUrl: `${url}/jwks`,
    introspectUrl: `${url}/introspect`,
    async close() {
      ac.abort();
      await server.finished;
    },
  });
}

/** A gateway config with one route to `upstreamUrl` behind an RS256 JWT provider on `jwksUrl`. */
export function jwksRouteConfig(upstreamUrl: string, jwksUrl: string): string {
  return `
upstreams:
  up: { targets: [ { url: "${upstreamUrl}" } ] }
auth:
  idp: { kind: jwt, jwks_url: "${jwksUrl}", algorithms: [RS256] }
routes:
  - { name: idp, match: { path: / }, upstream: up, auth: [idp] }
`;
}
