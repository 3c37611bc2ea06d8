// Waiting for a marker file: a command or fixture writes it once it is where the test wants it (a trap set,
// a step started), and the test acts then, not after a guessed delay.
import { existsSync } from 'node:fs';

/** Polls for `path` every 20 ms until it exists; throws after `timeoutMs`. */
export async function untilExists(path: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} never appeared in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
