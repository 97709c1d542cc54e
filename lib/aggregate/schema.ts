import { z } from "zod";
import { positiveInt, timerMs } from "../config/common.ts";
import { templateString } from "../transform/schema.ts";
import { parseTemplate } from "../transform/template.ts";
import { hasDotSegment } from "./call_path.ts";

const RESERVED_KEY = "errors";

export const aggregateCallSchema = z.strictObject({
  key: z.string().min(1).refine((k) => k !== RESERVED_KEY, {
    error: `"${RESERVED_KEY}" is reserved for the failures of a partial answer`,
  }).meta({ description: "Member of the merged object that holds this call's JSON" }),
  upstream: z.string().min(1),
  path: templateString.refine((p) => p.startsWith("/"), {
    error: "expected a path starting with /",
  }).refine((p) => !hasDotSegment(withPlaceholders(p)), {
    error: "expected a path without . or .. segments (the upstream would resolve them)",
  })
    .meta({
      description: "Path and query sent (GET); may use ${param.NAME}, ${query.NAME} and other " +
        "request variables, URL-encoded",
    }),
  timeout_ms: timerMs.default(2000).meta({ description: "Deadline of the whole call" }),
  max_body_bytes: positiveInt.default(1_048_576),
});

/** The template's own text, every variable a plain segment character. */
function withPlaceholders(path: string): string {
  try {
    return parseTemplate(path).map((p) => typeof p === "string" ? p : "x").join("");
  } catch {
    return ""; // templateString reports it
  }
}

export const aggregateSchema = z.strictObject({
  calls: z.array(aggregateCallSchema).min(1),
  on_error: z.enum(["fail", "partial"]).default("partial").meta({
    description: "A failed call fails the whole request, or the rest is returned with `errors`",
  }),
}).superRefine((a, ctx) => {
  const seen = new Set<string>();
  a.calls.forEach((c, i) => {
    if (seen.has(c.key)) {
      ctx.addIssue({
        code: "custom",
        path: ["calls", i, "key"],
        message: `duplicate key "${c.key}"`,
      });
    }
    seen.add(c.key);
  });
});

export type AggregateConfig = z.output<typeof aggregateSchema>;
export type AggregateCallConfig = z.output<typeof aggregateCallSchema>;
