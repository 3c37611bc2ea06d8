// A bundler logger for tests that shows only errors. Its own module: importing the workflow harness
// would load nock, which must not be active while a test connects to Temporal.
/** Bundler logs only errors: tests stay readable. */
export const quietBundlerLogger = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error(message: string, meta?: object) {
    console.error(message, meta);
  },
  log() {},
};
