/**
 * The options of a `Connection` field (RFC 9110 §7.6.1), read one way by the
 * server, the upstream client, the forwarder and the WebSocket relay.
 */

/**
 * The options a `Connection` value lists, lower-case, each without the
 * optional whitespace around it; empty list elements (`a, ,b`) are left out
 * (§5.6.1). The common single option is read without splitting.
 */
export function connectionOptions(value: string): string[] {
  if (!value.includes(",")) {
    const option = value.trim().toLowerCase();
    return option === "" ? [] : [option];
  }
  const options: string[] = [];
  for (const element of value.toLowerCase().split(",")) {
    const option = element.trim();
    if (option !== "") options.push(option);
  }
  return options;
}

/** What `optionSet` answers: whether a field name is among the options. */
export interface OptionSet {
  has(name: string): boolean;
}

/**
 * The options as a set, for testing every field of a message against them.
 * A list scanned once per field cost fields x options: an upstream's head of
 * 640 KiB naming 128k options and holding 64k fields took 10 s. A few
 * options (the usual `keep-alive`) are scanned; more are hashed once.
 */
export function optionSet(options: readonly string[]): OptionSet {
  return options.length <= 8 ? { has: (name) => options.includes(name) } : new Set(options);
}
