/** IP allow and deny lists, compiled once; the client address (after trusted proxies) is tested. */
import type { NamedPolicy } from "../core/pipeline.ts";
import { CidrSet, type Ip, parseIp } from "./cidr.ts";
import type { IpRulesConfig } from "./schema.ts";

export class IpRules {
  private readonly allow: CidrSet | null;
  private readonly deny: CidrSet | null;

  constructor(cfg: IpRulesConfig) {
    this.allow = cfg.allow ? new CidrSet(cfg.allow) : null;
    this.deny = cfg.deny?.length ? new CidrSet(cfg.deny) : null;
  }

  get empty(): boolean {
    return this.allow === null && this.deny === null;
  }

  /** Deny wins; with an allow list, an address outside it (or no usable address) is refused. */
  permits(ip: Ip | null): boolean {
    if (this.deny !== null && this.deny.contains(ip)) return false;
    return this.allow === null || this.allow.contains(ip);
  }
}

export function createIpPolicy(cfg: IpRulesConfig | undefined): NamedPolicy | null {
  if (!cfg) return null;
  const rules = new IpRules(cfg);
  if (rules.empty) return null;
  return {
    name: "ip_rules",
    policy: (ctx, next) =>
      rules.permits(parseIp(ctx.clientIp)) ? next(ctx) : ctx.refuse("ip_denied"),
  };
}
