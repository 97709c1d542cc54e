/**
 * The gateway's Prometheus registry. It lives in `RuntimeDeps`, so counters
 * survive reloads, and any module can register its own families on it.
 *
 * Recording is a field increment on a child object: callers on the hot path
 * resolve `family.labels(...)` once (per route, per series) and keep the child.
 * Values that already live elsewhere (pool sizes, breaker states) are read at
 * scrape time by a collector instead of being mirrored on every change.
 */
import {
  familyHeader,
  formatValue,
  LABEL_NAME,
  labelPairs,
  METRIC_NAME,
  seriesName,
} from "./exposition.ts";

export type MetricType = "counter" | "gauge" | "histogram";

export class Counter {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

export class Gauge {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
}

export class Histogram {
  /** Observations per bucket (not cumulative); the last slot holds those above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

interface Child<C> {
  readonly values: readonly string[];
  /** Rendered `a="x",b="y"`, computed once when the child is created. */
  readonly pairs: string;
  readonly child: C;
}

abstract class Family<C> {
  readonly children = new Map<string, Child<C>>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: readonly string[],
  ) {}

  /** The child for these label values, created on first use. */
  labels(...values: string[]): C {
    const key = values.length === 1 ? values[0]! : values.join("\u0000");
    let c = this.children.get(key);
    if (c === undefined) {
      if (values.length !== this.labelNames.length) {
        throw new Error(
          `${this.name} takes ${this.labelNames.length} label value(s), got ${values.length}`,
        );
      }
      c = { values, pairs: labelPairs(this.labelNames, values), child: this.create() };
      this.children.set(key, c);
    }
    return c.child;
  }

  private readonly byPair = new Map<string, Map<string, C>>();

  /**
   * `labels(a, b)` without the joined key: two lookups of strings that are
   * mostly the program's own (route names, result codes), whose hashes are
   * known, where a joined key is a new string to hash every request.
   */
  pair(a: string, b: string): C {
    let inner = this.byPair.get(a);
    if (inner === undefined) this.byPair.set(a, inner = new Map());
    let c = inner.get(b);
    if (c === undefined) inner.set(b, c = this.labels(a, b));
    return c;
  }

  protected abstract create(): C;
  abstract render(out: string[]): void;
}

/** A family whose children are one number each. */
abstract class ValueFamily<C extends { value: number }> extends Family<C> {
  render(out: string[]): void {
    for (const c of this.children.values()) {
      out.push(`${seriesName(this.name, c.pairs)} ${formatValue(c.child.value)}\n`);
    }
  }
}

export class CounterFamily extends ValueFamily<Counter> {
  protected create(): Counter {
    return new Counter();
  }
}

export class GaugeFamily extends ValueFamily<Gauge> {
  protected create(): Gauge {
    return new Gauge();
  }
}

export class HistogramFamily extends Family<Histogram> {
  private readonly leText: string[];
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly bounds: readonly number[],
  ) {
    super(name, help, "histogram", labelNames);
    this.leText = [...bounds.map(formatValue), "+Inf"];
  }
  protected create(): Histogram {
    return new Histogram(this.bounds);
  }
  render(out: string[]): void {
    for (const c of this.children.values()) {
      const h = c.child;
      const sep = c.pairs ? "," : "";
      let cumulative = 0;
      for (let i = 0; i < this.leText.length; i++) {
        cumulative += h.counts[i]!;
        out.push(
          `${this.name}_bucket{${c.pairs}${sep}le="${this.leText[i]}"} ${
            formatValue(cumulative)
          }\n`,
        );
      }
      out.push(`${seriesName(`${this.name}_sum`, c.pairs)} ${formatValue(h.sum)}\n`);
      out.push(`${seriesName(`${this.name}_count`, c.pairs)} ${formatValue(h.count)}\n`);
    }
  }
}

/** One sample of a collected family: label values in the family's order, and the value. */
export type Sample = readonly [labels: readonly string[], value: number];

/** A family whose samples are read at scrape time. */
class CollectedFamily {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
    readonly labelNames: readonly string[],
    public read: () => Iterable<Sample>,
  ) {}
  render(out: string[]): void {
    for (const [values, value] of this.read()) {
      out.push(
        `${seriesName(this.name, labelPairs(this.labelNames, values))} ${formatValue(value)}\n`,
      );
    }
  }
}

type AnyFamily = CounterFamily | GaugeFamily | HistogramFamily | CollectedFamily;

export class MetricsRegistry {
  private readonly families = new Map<string, AnyFamily>();

  /** A counter family; asking again for the same name returns the same family. */
  counter(name: string, help: string, labelNames: readonly string[] = []): CounterFamily {
    return this.family(
      name,
      "counter",
      labelNames,
      CounterFamily,
      () => new CounterFamily(name, help, "counter", labelNames),
    );
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): GaugeFamily {
    return this.family(
      name,
      "gauge",
      labelNames,
      GaugeFamily,
      () => new GaugeFamily(name, help, "gauge", labelNames),
    );
  }

  histogram(
    name: string,
    help: string,
    labelNames: readonly string[],
    bounds: readonly number[],
  ): HistogramFamily {
    const f = this.family(
      name,
      "histogram",
      labelNames,
      HistogramFamily,
      () => new HistogramFamily(name, help, labelNames, bounds),
    );
    if (f.bounds.join() !== bounds.join()) {
      throw new Error(`${name} is already registered with other buckets`);
    }
    return f;
  }

  /**
   * A family read at scrape time from state that lives elsewhere. Registering
   * the same name again replaces the reader.
   */
  collect(
    name: string,
    help: string,
    type: "counter" | "gauge",
    labelNames: readonly string[],
    read: () => Iterable<Sample>,
  ): void {
    const f = this.family(
      name,
      type,
      labelNames,
      CollectedFamily,
      () => new CollectedFamily(name, help, type, labelNames, read),
    );
    f.read = read;
  }

  /** The whole registry in the text exposition format. */
  render(): string {
    const out: string[] = [];
    for (const f of this.families.values()) {
      out.push(familyHeader(f.name, f.help, f.type));
      f.render(out);
    }
    return out.join("");
  }

  private family<F extends AnyFamily>(
    name: string,
    type: MetricType,
    labelNames: readonly string[],
    kind: abstract new (...args: never[]) => F,
    create: () => F,
  ): F {
    const existing = this.families.get(name);
    if (existing) {
      if (
        !(existing instanceof kind) || existing.type !== type ||
        existing.labelNames.join() !== labelNames.join()
      ) {
        throw new Error(`Metric ${name} is already registered with another type or labels`);
      }
      return existing;
    }
    if (!METRIC_NAME.test(name)) throw new Error(`Invalid metric name: ${name}`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith("__") || l === "le") {
        throw new Error(`Invalid label name for ${name}: ${l}`);
      }
    }
    const f = create();
    this.families.set(name, f);
    return f;
  }
}
