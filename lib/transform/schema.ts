import { z } from "zod";
import { editableHeader, headerName, httpMethod, positiveInt } from "../config/common.ts";
import { parseTemplate } from "./template.ts";
import { originProblem } from "./cors.ts";

/** A header value that may use `${...}` request variables, checked at load. */
export const templateString = z.string().superRefine((s, ctx) => {
  try {
    parseTemplate(s);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
  }
});

export const headerRulesSchema = z.strictObject({
  set: z.record(editableHeader, templateString).optional().meta({
    description: "Replace (or create) headers; a value that comes out empty removes the header",
  }),
  add: z.record(editableHeader, templateString).optional().meta({
    description: "Append values, keeping those already there",
  }),
  remove: z.array(editableHeader).optional(),
  rename: z.record(editableHeader, editableHeader).optional(),
});

const fieldPath = z.string().regex(
  /^(?:(?:\[\])+\.)?[^.\[\]]+(?:(?:\[\])*\.[^.\[\]]+)*$/,
  {
    error:
      "expected a dotted field path such as user.id, items[].internal_id or [].id (not ending in [])",
  },
);

export const jsonRulesSchema = z.strictObject({
  remove: z.array(fieldPath).optional(),
  rename: z.record(fieldPath, z.string().min(1)).optional().meta({
    description: "Field path -> new name of that field (in the same object)",
  }),
  keep: z.array(fieldPath).optional().meta({
    description: "Allowlist: only these fields (and what is under them) stay",
  }),
});

const directionSchema = z.strictObject({
  headers: headerRulesSchema.optional(),
  json: jsonRulesSchema.optional(),
  max_body_bytes: positiveInt.default(1_048_576).meta({
    description: "Largest JSON body buffered for the json rules",
  }),
  on_oversize: z.enum(["pass", "reject"]).default("pass").meta({
    description: "A larger body: pass it unmodified (and log), or refuse (413 / 502)",
  }),
});

export const transformSchema = z.strictObject({
  request: directionSchema.optional(),
  response: directionSchema.optional(),
  security_headers: z.boolean().default(false).meta({
    description: "Add HSTS (on TLS), X-Content-Type-Options, X-Frame-Options, Referrer-Policy; " +
      "remove Server and X-Powered-By",
  }),
});

const corsOrigin = z.string().superRefine((s, ctx) => {
  const problem = originProblem(s);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

export const corsSchema = z.strictObject({
  origins: z.array(corsOrigin).min(1),
  methods: z.array(httpMethod).default(["GET", "HEAD", "POST"]),
  headers: z.array(z.union([z.literal("*"), headerName])).default([]).meta({
    description: "Request headers allowed; * allows whatever a preflight asks for",
  }),
  expose_headers: z.array(headerName).default([]),
  credentials: z.boolean().default(false),
  max_age_s: z.number().int().min(0).default(600),
}).superRefine((c, ctx) => {
  if (c.credentials && c.origins.includes("*")) {
    ctx.addIssue({
      code: "custom",
      path: ["credentials"],
      message: "credentials: true cannot be combined with origin *; list the origins",
    });
  }
  if (c.credentials && c.expose_headers.includes("*")) {
    // Browsers read `*` as a wildcard only for requests without credentials (Fetch, CORS protocol).
    ctx.addIssue({
      code: "custom",
      path: ["expose_headers"],
      message: "with credentials: true, * exposes nothing to a request with credentials " +
        "(browsers take it as a header named *); list the headers",
    });
  }
});

export type TransformConfig = z.output<typeof transformSchema>;
export type TransformDirection = z.output<typeof directionSchema>;
export type CorsConfig = z.output<typeof corsSchema>;
