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
