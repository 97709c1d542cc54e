/** A parsed YAML document that can answer "where in the file is this key path?". */
import {
  type Alias,
  type Document,
  isAlias,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  type Scalar,
  type YAMLMap,
} from "yaml";
import type { ConfigIssue, KeyPath } from "./issues.ts";

export class YamlSource {
  readonly doc: Document;
  readonly lines: LineCounter;
  constructor(readonly file: string, private readonly text: string) {
    this.lines = new LineCounter();
    this.doc = parseDocument(text, {
      lineCounter: this.lines,
      prettyErrors: false,
      uniqueKeys: sameKey,
      merge: true,
    });
  }

  /** Syntax errors and duplicate keys found by the parser. */
  syntaxIssues(): ConfigIssue[] {
    const unquoted = this.doc.errors.length > 0 ? this.unquotedVariableInFlow() : null;
    if (unquoted) return [unquoted];
    // Warnings too: an unknown tag (`!foo`) would otherwise load as a plain string.
    return [...this.doc.errors, ...this.doc.warnings].map((e) => {
      const duplicate = e.code === "DUPLICATE_KEY" ? this.duplicateKeyAt(e.pos[0]) : null;
      if (duplicate) return duplicate;
      const tagged = e.code === "TAG_RESOLVE_FAILED" ? this.unknownTagAt(e.pos[0]) : null;
      if (tagged) return tagged;
      const pos = this.lines.linePos(e.pos[0]);
      return {
        file: this.file,
        line: pos.line,
        col: pos.col,
        path: [],
        message: `invalid YAML: ${e.message.split("\n")[0]}`,
      };
    });
  }

  /**
   * Aliases that cannot be expanded into plain data: one naming no anchor before
   * it, one inside the value it names (a cycle), or the one past which aliases
   * would add more than `MAX_ALIAS_VALUES` values (a "billion laughs" file,
   * refused before it is expanded; past it, sizes mean nothing).
   */
  aliasIssues(): ConfigIssue[] {
    const expansion = new AliasExpansion();
    expansion.size(this.doc.contents, []);
    return expansion.problems.map((p) => ({
      file: this.file,
      ...this.lines.linePos(rangeStart(p.alias) ?? 0),
      path: p.path,
      message: p.message,
    }));
  }

  /**
   * Position of the deepest node that exists along `path`. With `key: true` the
   * position of the key itself (for unknown keys) rather than its value.
   */
  locate(path: KeyPath, opts: { key?: boolean } = {}): { line: number; col: number } {
    let node: unknown = this.doc.contents;
    let offset = rangeStart(node) ?? 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
        if (!pair) break;
        if (last && opts.key) {
          offset = rangeStart(pair.key) ?? offset;
          break;
        }
        node = pair.value;
        offset = rangeStart(pair.value) ?? rangeStart(pair.key) ?? offset;
      } else if (isSeq(node) && typeof seg === "number") {
        const item = node.items[seg];
        if (item === undefined) break;
        node = item;
        offset = rangeStart(item) ?? offset;
      } else break;
    }
    const pos = this.lines.linePos(offset);
    return { line: pos.line, col: pos.col };
  }

  issue(path: KeyPath, message: string, opts: { key?: boolean } = {}): ConfigIssue {
    return { file: this.file, ...this.locate(path, opts), path, message };
  }

  /** Calls `fn` with every scalar value of the document and its key path. */
  forEachScalar(fn: (node: Scalar, path: KeyPath) => void): void {
    this.walk((node, path) => {
      if (isScalar(node)) fn(node, path);
    });
  }

  /** Calls `fn` with every scalar key of the document and its key path (the key included). */
  forEachKey(fn: (node: Scalar, path: KeyPath) => void): void {
    this.walk((node, path) => {
      if (!isMap(node)) return;
      for (const pair of node.items) {
        if (isPair(pair) && isScalar(pair.key)) fn(pair.key, [...path, keyText(pair.key)]);
      }
    });
  }

  /**
   * The parser says only where the second key starts; this names its key path and
   * the line of the first one, as every other config error does.
   */
  /**
   * `port: ${PORT}` inside `{ }` or `[ ]`: there `{` opens a mapping, so the
   * line fails to parse and the parser reports a cascade of errors after it.
   * One error, at the variable, says what to write instead.
   */
  private unquotedVariableInFlow(): ConfigIssue | null {
    const at = this.lines.linePos(this.doc.errors[0]!.pos[0]);
    const lineText = this.text.split("\n")[at.line - 1] ?? "";
    for (const m of lineText.matchAll(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}/g)) {
      const before = lineText.slice(0, m.index);
      const quoted = (before.split('"').length - 1) % 2 === 1 ||
        (before.split("'").length - 1) % 2 === 1;
      if (quoted || !/[[{]/.test(before) || m.index + 1 > at.col) continue;
      return {
        file: this.file,
        line: at.line,
        col: m.index + 1,
        path: [],
        message: `invalid YAML: ${m[0]} inside { } or [ ], where { opens a mapping: ` +
          `quote it ("${m[0]}", a string), or write that mapping in block style (one key ` +
          `a line), where an unquoted ${m[0]} may load as a number or true/false`,
      };
    }
    return null;
  }

  /** The value at `offset` carries a tag the parser does not know: named with its key path. */
  private unknownTagAt(offset: number): ConfigIssue | null {
    // The warning points at the tag; the value it tags is the first tagged scalar after it.
    const tagged: { path: KeyPath; tag: string; start: number }[] = [];
    this.walk((node, path) => {
      const start = rangeStart(node);
      if (isScalar(node) && node.tag && start !== undefined && start >= offset) {
        tagged.push({ path, tag: node.tag, start });
      }
    });
    if (tagged.length === 0) return null;
    const { path, tag } = tagged.reduce((a, b) => b.start < a.start ? b : a);
    const { line, col } = this.lines.linePos(offset);
    return {
      file: this.file,
      line,
      col,
      path,
      message:
        `unknown YAML tag ${tag}: expected a value without one (or a standard tag such as !!str)`,
    };
  }

  private duplicateKeyAt(offset: number): ConfigIssue | null {
    const hits: { path: KeyPath; pair: Pair; map: YAMLMap }[] = [];
    this.walk((node, path) => {
      if (!isMap(node)) return;
      const pair = node.items.find((p) => isPair(p) && rangeStart(p.key) === offset);
      if (pair) hits.push({ path: [...path, keyText(pair.key)], pair, map: node });
    });
    if (!hits[0]) return null;
    const { path, pair, map } = hits[0];
    const first = map.items.find((p) => sameKey(p.key, pair.key))!;
    const firstLine = this.lines.linePos(rangeStart(first.key) ?? offset).line;
    const { line, col } = this.lines.linePos(offset);
    return {
      file: this.file,
      line,
      col,
      path,
      message: `duplicate key "${keyText(pair.key)}" (also at line ${firstLine}): ` +
        "expected each key once per mapping",
    };
  }

  /** Calls `visit` with every node of the document (maps, lists, scalars) and its key path. */
  private walk(visit: (node: unknown, path: KeyPath) => void): void {
    const walk = (node: unknown, path: KeyPath): void => {
      visit(node, path);
      if (isMap(node)) {
        for (const pair of node.items) {
          if (isPair(pair)) walk(pair.value, [...path, keyText(pair.key)]);
        }
      } else if (isSeq(node)) {
        node.items.forEach((item, i) => walk(item, [...path, i]));
      }
    };
    walk(this.doc.contents, []);
  }
}

/** Far above what aliases add to a real config, far below an alias bomb. */
export const MAX_ALIAS_VALUES = 100_000;

/**
 * Counts the values each node stands for once its aliases are expanded, in
 * document order, so that an alias finds the size of its anchor already known
 * (an alias names the last anchor before it) without following it again.
 */
class AliasExpansion {
  readonly problems: { alias: Alias; path: KeyPath; message: string }[] = [];
  private stopped = false;
  private readonly anchors = new Map<string, Node>();
  private readonly sizes = new Map<Node, number>();
  private added = 0;

  size(node: unknown, path: KeyPath): number {
    if (this.stopped) return 0;
    if (isAlias(node)) return this.aliasSize(node, path);
    if (isNode(node) && node.anchor) this.anchors.set(node.anchor, node);
    let n = 1;
    if (isMap(node)) {
      for (const pair of node.items) {
        n += this.size(pair.key, path) + this.size(pair.value, [...path, keyText(pair.key)]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => n += this.size(item, [...path, i]));
    }
    if (isNode(node)) this.sizes.set(node, n);
    return n;
  }

  private aliasSize(alias: Alias, path: KeyPath): number {
    const target = this.anchors.get(alias.source);
    if (target === undefined) {
      this.problems.push({
        alias,
        path,
        message: `alias *${alias.source} names no anchor: ` +
          `expected &${alias.source} on a value before it`,
      });
      return 1;
    }
    const size = this.sizes.get(target);
    if (size === undefined) {
      return this.stop(
        alias,
        path,
        "is inside the value it names: " +
          "expected an alias to a value that ends before it",
      );
    }
    this.added += size;
    if (this.added > MAX_ALIAS_VALUES) {
      return this.stop(
        alias,
        path,
        `expands the file past ${MAX_ALIAS_VALUES} values: ` +
          "expected aliases that add fewer values (an alias bomb?)",
      );
    }
    return size;
  }

  private stop(alias: Alias, path: KeyPath, what: string): number {
    this.problems.push({ alias, path, message: `alias *${alias.source} ${what}` });
    this.stopped = true;
    return 0;
  }
}

function keyText(k: unknown): string {
  return isScalar(k) ? String(k.value) : String(k);
}

/**
 * Keys that become the same key of the loaded object: `1` and `"1"` are
 * different YAML keys, but one would silently replace the other.
 */
function sameKey(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!isScalar(a) || !isScalar(b)) return false;
  return typeof a.value !== "symbol" && typeof b.value !== "symbol" &&
    String(a.value) === String(b.value);
}

function rangeStart(n: unknown): number | undefined {
  return (n as Node | null)?.range?.[0];
}
