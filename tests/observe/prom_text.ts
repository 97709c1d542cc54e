/**
 * A strict reader of the Prometheus text exposition format (0.0.4) for tests:
 * it throws on anything a Prometheus server would reject or that breaks the
 * format's rules (unknown TYPE, samples before their TYPE, a family split in
 * two, duplicate series, bad escapes, histograms whose buckets do not add up).
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  type: string;
  help: string;
  samples: PromSample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"(,|$)/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const SUFFIXES: Record<string, string[]> = {
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["_sum", "_count"],
};

export function parsePromText(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  const seen = new Set<string>();
  let current: PromFamily | null = null;
  const lines = text.split("\n");
  if (lines.pop() !== "") throw new Error("exposition must end with a newline");
  for (const [i, line] of lines.entries()) {
    const where = `line ${i + 1}: ${line}`;
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue;
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!new RegExp(`^${NAME}$`).test(name)) throw new Error(`bad metric name: ${where}`);
      let f = families.get(name);
      if (!f) {
        f = { name, type: "untyped", help: "", samples: [] };
        families.set(name, f);
      } else if (f !== current) throw new Error(`family ${name} is split: ${where}`);
      current = f;
      if (kind === "TYPE") {
        if (!TYPES.has(rest)) throw new Error(`unknown type: ${where}`);
        if (f.samples.length) throw new Error(`TYPE after samples: ${where}`);
        f.type = rest;
      } else f.help = rest.replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample: ${where}`);
    const [, name, labelText, valueText] = m as unknown as [string, string, string?, string?];
    const labels = parseLabels(labelText ?? "", where);
    const value = parseValue(valueText!, where);
    const family = familyOf(name, current);
    if (!family) throw new Error(`sample outside its family: ${where}`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`duplicate series: ${where}`);
    seen.add(key);
    family.samples.push({ name, labels, value });
  }
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

function familyOf(name: string, current: PromFamily | null): PromFamily | null {
  if (!current) return null;
  if (name === current.name) return current.type === "histogram" ? null : current;
  for (const s of SUFFIXES[current.type] ?? []) {
    if (name === current.name + s) return current;
  }
  return null;
}

function parseLabels(text: string, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const m = LABEL.exec(rest);
    if (!m) throw new Error(`bad labels: ${where}`);
    const [whole, name, raw] = m as unknown as [string, string, string];
    if (name in out) throw new Error(`repeated label ${name}: ${where}`);
    out[name] = raw.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    rest = rest.slice(whole.length);
  }
  return out;
}

function parseValue(text: string, where: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value: ${where}`);
  return Number(text);
}

function checkHistogram(f: PromFamily): void {
  const groups = new Map<string, PromSample[]>();
  for (const s of f.samples) {
    const { le: _le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  for (const [key, samples] of groups) {
    const buckets = samples.filter((s) => s.name.endsWith("_bucket"));
    const count = samples.find((s) => s.name.endsWith("_count"));
    const sum = samples.find((s) => s.name.endsWith("_sum"));
    if (!count || !sum) throw new Error(`${f.name}${key}: histogram without _sum or _count`);
    let prevLe = -Infinity;
    let prev = 0;
    for (const b of buckets) {
      const le = parseValue(b.labels.le ?? "", `${f.name} le`);
      if (!(le > prevLe)) throw new Error(`${f.name}${key}: buckets out of order`);
      if (b.value < prev) throw new Error(`${f.name}${key}: buckets not cumulative`);
      prevLe = le;
      prev = b.value;
    }
    if (prevLe !== Infinity) throw new Error(`${f.name}${key}: no +Inf bucket`);
    if (prev !== count.value) throw new Error(`${f.name}${key}: +Inf bucket differs from _count`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`; throws if not exactly one. */
export function sampleValue(
  families: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const matches = [...families.values()].flatMap((f) => f.samples).filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  if (matches.length !== 1) {
    throw new Error(`expected one ${name}${JSON.stringify(labels)}, found ${matches.length}`);
  }
  return matches[0]!.value;
}

/** Every sample of `name`, as `labels -> value` with labels in a stable order. */
export function samplesOf(families: Map<string, PromFamily>, name: string): PromSample[] {
  return [...families.values()].flatMap((f) => f.samples).filter((s) => s.name === name);
}
