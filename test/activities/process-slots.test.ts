// The cap on sandboxed commands running at once in a worker (TERRAPIN_COMMAND_CONCURRENCY), in a file of
// its own: the cap is read once per process, at the first command.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it, vi } from 'vitest';

vi.stubEnv('TERRAPIN_COMMAND_CONCURRENCY', '2');
const { commandConcurrency, runCommand } = await import('../../activities/process.ts');

let tmp: string | undefined;
afterAll(async () => {
  vi.unstubAllEnvs();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

it('reads the cap from TERRAPIN_COMMAND_CONCURRENCY, and defaults to at least 4', () => {
  expect(commandConcurrency()).toBe(2);
  expect(commandConcurrency({})).toBeGreaterThanOrEqual(4);
  expect(commandConcurrency({ TERRAPIN_COMMAND_CONCURRENCY: 'lots' })).toBeGreaterThanOrEqual(4);
});

it('runs at most that many wrapped commands at once; the others wait their turn and all run', async () => {
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-slots-'));
  const running = join(tmp, 'running');
  await mkdir(running);
  // Each command registers itself, writes how many are registered, stays a while, and leaves.
  const script = (i: number) => `touch ${running}/${i}; ls ${running} | wc -l >> ${tmp}/counts; sleep 0.3; rm ${running}/${i}`;
  const passThrough = (c: { file: string; args: readonly string[]; env: Record<string, string> }) => ({ file: c.file, args: c.args, env: c.env });
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => runCommand('sh', ['-c', script(i)], { cwd: tmp!, wrap: passThrough })));
  expect(results.map((r) => r.exitCode)).toEqual([0, 0, 0, 0, 0, 0]);
  const counts = (await readFile(join(tmp, 'counts'), 'utf8')).trim().split('\n').map(Number);
  expect(counts).toHaveLength(6);
  expect(Math.max(...counts)).toBeLessThanOrEqual(2);
});
