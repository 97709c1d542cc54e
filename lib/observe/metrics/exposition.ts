/**
 * Prometheus text exposition format (version 0.0.4): the escaping and number
 * rules, kept apart from the registry that decides what to render.
 */

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
export const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A sample value as Prometheus parses it (`+Inf`, `-Inf`, `NaN` spelled its way). */
export function formatValue(v: number): string {
  if (Number.isFinite(v)) return String(v);
  if (Number.isNaN(v)) return "NaN";
  return v > 0 ? "+Inf" : "-Inf";
}

export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v)
    ? v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
    : v;
}

export function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/**
 * `a="x",b="y"` for the label values given; an empty value is left out (to
 * Prometheus an empty label and a missing one are the same series).
 */
export function labelPairs(names: readonly string[], values: readonly string[]): string {
  let out = "";
  for (let i = 0; i < names.length; i++) {
    const v = values[i] ?? "";
    if (v === "") continue;
    out += `${out ? "," : ""}${names[i]}="${escapeLabelValue(v)}"`;
  }
  return out;
}

/** `name{pairs}` or `name` when there are no pairs. */
export function seriesName(name: string, pairs: string): string {
  return pairs ? `${name}{${pairs}}` : name;
}

export function familyHeader(name: string, help: string, type: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}
