/**
 * A fixed set of lower-case field names, looked up by length first. A parsed
 * name is a fresh string every time, and a `Set` lookup hashes it first (a
 * runtime call per name, measured in the proxy's profile); most names share no
 * length with a member, and the rest compare a few strings.
 */
export class NameSet {
  private readonly byLength: (string[] | undefined)[] = [];

  constructor(names: Iterable<string>) {
    for (const name of names) {
      const same = this.byLength[name.length] ??= [];
      if (!same.includes(name)) same.push(name);
    }
  }

  has(name: string): boolean {
    const same = this.byLength[name.length];
    return same !== undefined && same.includes(name);
  }

  /** The members, for building other sets from this one. */
  *[Symbol.iterator](): Iterator<string> {
    for (const same of this.byLength) if (same !== undefined) yield* same;
  }
}
