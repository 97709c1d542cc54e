/**
 * A request in absolute form (`GET http://b.example/x`) is routed by the
 * target's authority, while the Host header may name another host; the
 * upstream would then see a host the routing did not choose. Such requests are
 * refused unless both name the same host.
 */
import type { NamedPolicy } from "../core/pipeline.ts";
import { hostOf } from "../server/handler.ts";

export const hostAgreementPolicy: NamedPolicy = {
  name: "host_agreement",
  policy: (ctx, next) => {
    const header = ctx.headers.get("host");
    if (header === null || header === ctx.host || hostOf(header) === ctx.host) return next(ctx);
    return ctx.refuse("bad_request", {
      message: "The Host header does not match the host of the request target",
    });
  },
};
