/**
 * A request in absolute form (`GET http://b.example/x`) is routed by the
 * target's authority, while the Host header may name another host; the
 * upstream would then see a host the routing did not choose. Such requests are
 * refused unless both name the same host.
 */
import type { NamedPolicy } from "../core/pipeline.ts";
import type { RequestContext } from "../core/context.ts";
import { hostOf } from "../server/handler.ts";
import { validAuthority } from "../server/incoming.ts";

export const hostAgreementPolicy: NamedPolicy = {
  name: "host_agreement",
  policy: (ctx, next) => {
    const header = ctx.headers.get("host");
    if (!ctx.incoming.authorityChecked && !runtimeParsedHostsValid(ctx, header)) {
      return ctx.refuse("bad_request", { message: "Invalid Host header" });
    }
    if (header === null || header === ctx.incoming.authority || hostOf(header) === ctx.host) {
      return next(ctx);
    }
    return ctx.refuse("bad_request", {
      message: "The Host header does not match the host of the request target",
    });
  },
};

/**
 * The gateway's own parser checks the authority and Host once per connection;
 * the runtime's (HTTP/2 and mTLS listeners) takes `a:@b` or `a#` as they come.
 */
function runtimeParsedHostsValid(ctx: RequestContext, header: string | null): boolean {
  const authority = ctx.incoming.authority;
  return validAuthority(authority) &&
    (header === null || header === authority || validAuthority(header));
}
