// What went wrong, by whose move it is to fix it: the CLI turns each into its documented exit code, the MCP
// server into a clear tool error. No imports: loading these must cost nothing.

/** A request for something that is not there (an unknown repository, project or run): exit 3. */
export class NotFoundError extends Error {}

/** A malformed value (a filter with quotes, an unknown kind): exit 2. */
export class BadInputError extends Error {}

/** Nothing to talk to, or no right to (Temporal unreachable, credentials missing): exit 4. */
export class UnavailableError extends Error {}
