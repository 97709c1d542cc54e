/**
 * Auth work that is not per route: the plan-wide auth state is prepared even
 * when no route uses it (the admin API adds keys to its store), and requests
 * on a listener with `client_cert: required` are refused before routing when
 * they come without a trusted client certificate.
 */
import type { GlobalStage } from "../plan/chain.ts";
import type { Policy } from "../core/pipeline.ts";
import { authPlanOf } from "./auth_plan.ts";
import { untrustedCertificate } from "./mtls.ts";
import { refusal } from "./provider.ts";

const NO_CERTIFICATE = refusal(
  "invalid_client_certificate",
  "no_certificate",
  "This listener requires a client certificate",
);
const CHALLENGE = 'Certificate realm="gateway"';

export const authGlobalStage: GlobalStage = {
  name: "auth",
  async build(b) {
    await authPlanOf(b);
    const required = new Set(
      b.config.listeners
        .filter((l) => l.tls?.client_ca && (l.tls.client_cert ?? "required") === "required")
        .map((l) => l.name),
    );
    return required.size ? [{ name: "client_cert", policy: requireClientCert(required) }] : [];
  },
};

function requireClientCert(listeners: ReadonlySet<string>): Policy {
  return (ctx, next) => {
    if (ctx.clientCert !== null || !listeners.has(ctx.listener.name)) return next(ctx);
    const r = ctx.clientCertError === null
      ? NO_CERTIFICATE
      : untrustedCertificate(ctx.clientCertError);
    ctx.authFailure = { provider: "listener", reason: r.reason };
    return ctx.refuse(r.code, {
      ...(r.message !== undefined ? { message: r.message } : {}),
      headers: { "www-authenticate": CHALLENGE },
    });
  };
}
