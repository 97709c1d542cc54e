/**
 * Field rules for JSON bodies: keep (an allowlist), remove and rename fields
 * named by dotted paths. Arrays are walked element by element wherever they
 * occur, so `items[].internal_id` reaches the field in every item (the `[]`
 * says so; `[].id` addresses the items of a top-level array). Paths always
 * name fields as they arrive; keep applies first, then remove, then rename.
 * Rules compile once into trees walked in a single pass per rule kind.
 */
import { isRawJson } from "./exact_json.ts";

export interface JsonRules {
  keep?: readonly string[] | undefined;
  remove?: readonly string[] | undefined;
  rename?: Readonly<Record<string, string>> | undefined;
}

interface Node {
  readonly children: Map<string, Node>;
  /** keep: the whole subtree stays. remove: the field goes. */
  whole: boolean;
  renameTo: string | null;
}

const newNode = (): Node => ({ children: new Map(), whole: false, renameTo: null });

/** `items[].internal_id` -> ["items", "internal_id"]; `[].id` -> ["id"]. */
export function fieldPathSegments(path: string): string[] {
  return path.split(".").map((s) => s.replace(/(\[\])+$/, "")).filter((s) => s !== "");
}

function insert(root: Node, path: string): Node {
  let node = root;
  for (const seg of fieldPathSegments(path)) {
    let next = node.children.get(seg);
    if (!next) node.children.set(seg, next = newNode());
    node = next;
  }
  return node;
}

export type JsonTransform = (value: unknown) => unknown;

/** Compiles the rules into one function that edits a parsed body in place (and returns it). */
export function compileJsonRules(rules: JsonRules): JsonTransform | null {
  const steps: JsonTransform[] = [];
  if (rules.keep?.length) {
    const root = newNode();
    for (const p of rules.keep) insert(root, p).whole = true;
    steps.push((v) => eachObject(v, (o) => keepIn(o, root)));
  }
  const edits = newNode();
  for (const p of rules.remove ?? []) insert(edits, p).whole = true;
  for (const [p, to] of Object.entries(rules.rename ?? {})) insert(edits, p).renameTo = to;
  if (edits.children.size > 0) steps.push((v) => eachObject(v, (o) => editIn(o, edits)));
  if (steps.length === 0) return null;
  if (steps.length === 1) return steps[0]!;
  return (v) => steps.reduce((acc, step) => step(acc), v);
}

type Obj = Record<string, unknown>;

/** Applies `fn` to the value if it is an object, or to every object inside it if it is an array. */
function eachObject(v: unknown, fn: (o: Obj) => unknown): unknown {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = eachObject(v[i], fn);
    return v;
  }
  // A number kept as written is an object only to the runtime.
  return v !== null && typeof v === "object" && !isRawJson(v) ? fn(v as Obj) : v;
}

function keepIn(o: Obj, node: Node): Obj {
  for (const key of Object.keys(o)) {
    const child = node.children.get(key);
    if (!child) delete o[key];
    else if (!child.whole) o[key] = eachObject(o[key], (inner) => keepIn(inner, child));
  }
  return o;
}

function editIn(o: Obj, node: Node): Obj {
  let renamed = false;
  for (const [key, child] of node.children) {
    if (!Object.hasOwn(o, key)) continue;
    if (child.whole) {
      delete o[key];
      continue;
    }
    if (child.children.size > 0) o[key] = eachObject(o[key], (inner) => editIn(inner, child));
    if (child.renameTo !== null) renamed = true;
  }
  return renamed ? renameKeys(o, node) : o;
}

/** A copy with renamed keys in their original places (a renamed key replaces one of the same name). */
function renameKeys(o: Obj, node: Node): Obj {
  const targets = new Set<string>();
  for (const [key, child] of node.children) {
    if (child.renameTo !== null && Object.hasOwn(o, key)) targets.add(child.renameTo);
  }
  // No prototype: a body key named __proto__ stays an ordinary field.
  const out: Obj = Object.create(null);
  for (const key of Object.keys(o)) {
    const to = node.children.get(key)?.renameTo ?? null;
    if (to !== null) out[to] = o[key];
    else if (!targets.has(key)) out[key] = o[key];
  }
  return out;
}
