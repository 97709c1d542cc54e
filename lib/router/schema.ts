import { z } from "zod";
import { headerName, httpMethod, linearRegex, oneOrMany } from "../config/common.ts";
import { cleanVersion } from "./version.ts";
import { replacementLiteral, rewriteTextProblem, routePathProblem } from "./path_rules.ts";

const pathPrefix = z.string().startsWith("/", { error: "expected a path starting with /" })
  .check(problemCheck(routePathProblem));

/** A refinement whose message is the problem `find` names (null: none). */
function problemCheck(find: (s: string) => string | null) {
  return z.superRefine((s: string, ctx) => {
    const message = find(s);
    if (message !== null) ctx.addIssue({ code: "custom", message });
  });
}

/** A value matcher: an exact string, or `{ regex: ... }`. */
const valueMatcher = z.union([
  z.string(),
  z.strictObject({ regex: linearRegex }),
  z.strictObject({ present: z.boolean() }),
]);

/**
 * An API version, written as requests' versions are compared (`v3` is `3`).
 * A YAML number that is not whole is refused: `1.10` reads as the number 1.1.
 */
const apiVersion = z.union([
  z.string(),
  z.number().refine(Number.isInteger, {
    error: (i) =>
      `expected a whole number or a quoted version, got the number ${i.input} ` +
      `(quote it: 1.10 unquoted reads as the number 1.1)`,
  }),
]).transform((v) => cleanVersion(String(v)));

const hostPattern = z.string().regex(/^(\*\.)?[a-zA-Z0-9.-]+(:\d+)?$/, {
  error: "expected a host name such as api.example.com or *.example.com",
});

export const matchSchema = z.strictObject({
  path: pathPrefix.optional().meta({ description: "Path prefix, matched on segment boundaries" }),
  path_exact: pathPrefix.optional(),
  path_regex: linearRegex.optional().meta({
    description: "Regular expression on the path, RE2 syntax (matched in linear time)",
  }),
  // An empty list would match nothing (405 with an empty Allow, or never): omit the key instead.
  methods: z.array(httpMethod).min(1).optional(),
  host: oneOrMany(hostPattern, 1).optional(),
  headers: z.record(headerName, valueMatcher).optional(),
  query: z.record(z.string().min(1), valueMatcher).optional(),
  version: oneOrMany(apiVersion, 1).optional().meta({
    description: "API versions this route serves (see versioning)",
  }),
}).superRefine((m, ctx) => {
  const kinds = ["path", "path_exact", "path_regex"].filter((k) => m[k as keyof typeof m]);
  if (kinds.length > 1) {
    ctx.addIssue({
      code: "custom",
      path: [kinds[1]!],
      message: `expected only one of path, path_exact, path_regex (found ${kinds.join(", ")})`,
    });
  }
});

export const rewriteSchema = z.union([
  z.strictObject({
    regex: linearRegex,
    // Only the literal parts: groups insert text of the already normalised path.
    replacement: z.string().check(problemCheck((r) => rewriteTextProblem(replacementLiteral(r)))),
  }),
  z.strictObject({
    prefix: z.string().startsWith("/").check(problemCheck(rewriteTextProblem)).meta({
      description: "Replaces the matched path prefix with this one",
    }),
  }),
]);

export const splitSchema = z.array(z.strictObject({
  upstream: z.string().min(1),
  weight: z.number().min(0),
})).min(1);

export const stickySchema = z.string().regex(
  /^(consumer|ip|ip\/64|header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+)$/,
  {
    error: "expected consumer, ip, ip/64 or header:NAME",
  },
);

export const versioningSchema = z.strictObject({
  sources: z.array(z.enum(["path", "header", "accept", "query"])).min(1).default([
    "path",
    "header",
    "accept",
    "query",
  ]).meta({ description: "Where the requested version is read, first found wins" }),
  header: headerName.default("X-API-Version"),
  query: z.string().min(1).default("version"),
  default: apiVersion.optional().meta({
    description: "Version assumed when the request names none; the latest by default",
  }),
  on_unknown: z.enum(["reject", "default", "latest"]).default("reject").meta({
    description: "A version no route serves: 404 (reject) or serve the default or latest",
  }),
  supported_header: headerName.default("X-API-Supported-Versions"),
});

export type MatchConfig = z.output<typeof matchSchema>;
export type RewriteConfig = z.output<typeof rewriteSchema>;
export type VersioningConfig = z.output<typeof versioningSchema>;
