/**
 * Gauges of the token caches of the live plan's introspection providers, read
 * at scrape time: how many answers are held and how many characters their keys
 * take, so that the bound on both (`cache_size`, digests for long tokens) can
 * be watched, and checked by tests through the admin listener.
 */
import type { BuildContext } from "../plan/build_context.ts";
import type { MetricsRegistry, Sample } from "../observe/metrics/registry.ts";
import type { IntrospectionProvider } from "./introspection.ts";

/**
 * The two gauges over `providers`. The gateway registers them empty at start,
 * so that /metrics lists every family whatever the config; the plan that goes
 * live registers its own providers over them.
 */
export function registerTokenCacheGauges(
  m: MetricsRegistry,
  providers: () => readonly IntrospectionProvider[],
): void {
  m.collect(
    "gateway_auth_cache_entries",
    "Introspection answers cached, by provider",
    "gauge",
    ["provider"],
    (): Sample[] => providers().map((x) => [[x.name], x.cached.entries]),
  );
  m.collect(
    "gateway_auth_cache_key_chars",
    "Characters of the cache keys of those answers (tokens, or digests of long ones)",
    "gauge",
    ["provider"],
    (): Sample[] => providers().map((x) => [[x.name], x.cached.keyChars]),
  );
}

/** Adds a provider to its plan's gauges; the readers are registered when the plan goes live. */
export async function watchTokenCache(b: BuildContext, p: IntrospectionProvider): Promise<void> {
  const watched = await b.shared("auth:cache-metrics", () => {
    const list: IntrospectionProvider[] = [];
    // Registering again replaces the readers: the plan that goes live reports its own providers.
    b.onActivate(() => registerTokenCacheGauges(b.deps.metrics, () => list));
    // A later plan without such providers registers no readers: these must not keep this plan's.
    b.onDispose(() => {
      list.length = 0;
    });
    return list;
  });
  watched.push(p);
}
