/** Filled in by `deno task compile` for release binaries; empty in a checkout. */
export const BUILD_COMMIT = "";
