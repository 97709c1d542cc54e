/**
 * Writes config/gateway.schema.json, the JSON Schema of the config file for
 * editors (YAML language servers: `# yaml-language-server: $schema=...`).
 * `--check` exits 1 when the file on disk is not current.
 */
import { configJsonSchema } from "../lib/config/validate.ts";

export const SCHEMA_FILE = new URL("../config/gateway.schema.json", import.meta.url);

export function renderSchema(): string {
  const schema = {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "https://gateway.dev/schema/gateway.schema.json",
    title: "Gateway configuration",
    ...withoutMetaSchema(configJsonSchema()),
  };
  return JSON.stringify(schema, null, 2) + "\n";
}

function withoutMetaSchema(s: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = s;
  return rest;
}

if (import.meta.main) {
  const text = renderSchema();
  if (Deno.args.includes("--check")) {
    const current = await Deno.readTextFile(SCHEMA_FILE).catch(() => "");
    if (current !== text) {
      console.error("config/gateway.schema.json is out of date: run `deno task schema`");
      Deno.exit(1);
    }
    console.log("config/gateway.schema.json is current");
  } else {
    await Deno.writeTextFile(SCHEMA_FILE, text);
    console.log(`wrote ${SCHEMA_FILE.pathname}`);
  }
}
