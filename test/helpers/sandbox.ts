// The sandbox as tests run it: bubblewrap on (as in production), with the test's own host dirs (local
// state files in temp dirs outside the checkout) listed the way an operator lists them in `runner.paths`.
import { mkdirSync } from 'node:fs';
import { resolveSandbox, type Sandbox } from '../../activities/sandbox.ts';

/** `auto` with `writable` dirs visible read-write to terraform and hooks. */
export function testSandbox(writable: string[] = []): Promise<Sandbox> {
  // Mounted only if they exist, like an operator's dirs.
  for (const path of writable) mkdirSync(path, { recursive: true });
  return resolveSandbox({ sandbox: 'auto', paths: writable.map((path) => ({ path, writable: true })) });
}
