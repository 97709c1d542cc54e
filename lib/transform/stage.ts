/**
 * The transform stage of a route: the request body size limit, then request
 * header and JSON rules on the way in, JSON and header rules (and the
 * security headers preset) on the way out. Each part is a policy only on
 * routes that configure it.
 */
import type { RouteConfig } from "../config/schema.ts";
import type { NamedPolicy } from "../core/pipeline.ts";
import type { Stage } from "../plan/chain.ts";
import type { BuildContext } from "../plan/build_context.ts";
import { responseFields } from "../core/parsed_response.ts";
import { bodyLimitPolicy } from "./body_limit.ts";
import {
  compileRequestHeaders,
  compileResponseHeaders,
  type ResponseHeaderEdit,
} from "./headers.ts";
import { compileJsonRules } from "./json_rules.ts";
import { type JsonBodyOptions, requestJsonPolicy, responseJsonPolicy } from "./json_body.ts";
import { applySecurityHeaders } from "./security_headers.ts";
import type { TransformDirection } from "./schema.ts";

export const transformStage: Stage = {
  name: "transform",
  build(route, _index, b) {
    const maxBody = route.limits?.max_body_bytes ?? b.config.security.max_body_bytes;
    const out: NamedPolicy[] = [bodyLimitPolicy(maxBody)];
    const t = route.transform;
    if (!t) return out;
    const req = t.request;
    const res = t.response;

    const requestHeaders = req?.headers ? compileRequestHeaders(req.headers) : null;
    if (requestHeaders) {
      out.push({
        name: "request_headers",
        policy: (ctx, next) => {
          requestHeaders(ctx);
          return next(ctx);
        },
      });
    }
    const requestJson = req?.json ? compileJsonRules(req.json) : null;
    if (requestJson) out.push(requestJsonPolicy(requestJson, bodyOptions(route, req!, b)));

    const edits: ResponseHeaderEdit[] = [];
    if (t.security_headers) edits.push(applySecurityHeaders);
    const responseHeaders = res?.headers ? compileResponseHeaders(res.headers) : null;
    if (responseHeaders) edits.push(responseHeaders);
    if (edits.length) out.push(responseHeadersPolicy(edits));

    const responseJson = res?.json ? compileJsonRules(res.json) : null;
    if (responseJson) out.push(responseJsonPolicy(responseJson, bodyOptions(route, res!, b)));
    return out;
  },
};

function bodyOptions(route: RouteConfig, d: TransformDirection, b: BuildContext): JsonBodyOptions {
  return {
    route: route.name,
    maxBytes: d.max_body_bytes,
    onOversize: d.on_oversize,
    logger: b.deps.logger,
  };
}

function responseHeadersPolicy(edits: readonly ResponseHeaderEdit[]): NamedPolicy {
  return {
    name: "response_headers",
    policy: async (ctx, next) => {
      const res = await next(ctx);
      const fields = responseFields(res);
      for (const edit of edits) edit(ctx, fields);
      return res;
    },
  };
}
