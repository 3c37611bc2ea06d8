// Locates the `temporal` CLI for tests: TEMPORAL_CLI_PATH, then PATH; undefined lets the SDK download it.
import { execFileSync } from 'node:child_process';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startDevServer } from '../../app/temporal.ts';

export function temporalCliPath(): string | undefined {
  if (process.env.TEMPORAL_CLI_PATH) return process.env.TEMPORAL_CLI_PATH;
  try {
    return execFileSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

type LocalOpts = NonNullable<Parameters<typeof TestWorkflowEnvironment.createLocal>[0]>;

/** Options for TestWorkflowEnvironment.createLocal using the CLI found above. */
export function devServerOptions(extra: Omit<NonNullable<LocalOpts['server']>, 'executable'> = {}): LocalOpts {
  const path = temporalCliPath();
  return {
    server: {
      ...extra,
      executable: path ? { type: 'existing-path', path } : { type: 'cached-download' },
    },
  };
}

/** A dev server for a test, started again when the SDK's 5 s startup deadline passes on a busy machine. */
export function startTestServer(extra: Parameters<typeof devServerOptions>[0] = {}): Promise<TestWorkflowEnvironment> {
  return startDevServer(devServerOptions(extra));
}
