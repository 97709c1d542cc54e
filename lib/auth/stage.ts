/**
 * The auth stage of a route's chain: the route's providers (any one
 * suffices), then its scopes. A route without `auth` only has client-sent
 * identity headers removed, when the config defines any, so that no client can
 * pose as a verified consumer to an upstream that trusts those headers.
 */
import type { Stage } from "../plan/chain.ts";
import { authPlanOf, providerOf } from "./auth_plan.ts";
import { createAuthPolicy, stripIdentityPolicy } from "./policy.ts";

/** A scope token as RFC 6749 §3.3 allows: printable ASCII but space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

export const authStage: Stage = {
  name: "auth",
  async build(route, index, b) {
    const plan = await authPlanOf(b);
    if (plan === null) return [];
    const strip = plan.stripIdentity ?? (() => {});
    if (!route.auth?.length) {
      return plan.stripIdentity
        ? [{ name: "strip_identity", policy: stripIdentityPolicy(plan.stripIdentity) }]
        : [];
    }
    const scopes = route.scopes ?? [];
    scopes.forEach((s, j) => {
      if (!SCOPE_TOKEN.test(s)) {
        b.fail(["routes", index, "scopes", j], "expected a scope token (no spaces, quotes or \\)");
      }
    });
    const providers = [];
    for (const name of route.auth) providers.push(await providerOf(b, name, plan));
    return [{
      name: "auth",
      policy: createAuthPolicy({
        providers,
        scopes,
        forwardCredentials: route.forward_credentials,
        stripIdentity: strip,
      }),
    }];
  },
};
