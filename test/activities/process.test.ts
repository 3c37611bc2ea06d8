import { mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { runCommand, type RunResult } from '../../activities/process.ts';
import { NetworkSetupError } from '../../activities/sandbox-network.ts';
import { untilExists } from '../helpers/until-exists.ts';

const cwd = tmpdir();

describe('runCommand', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('captures stdout and stderr together and returns a non-zero exit code without throwing', async () => {
    const r = await runCommand('sh', ['-c', 'echo to-stdout; echo to-stderr >&2; exit 3'], { cwd });
    expect(r.exitCode).toBe(3);
    expect(r.output).toContain('to-stdout');
    expect(r.output).toContain('to-stderr');
    expect(r.stdout).toBe('to-stdout');
  });

  it('reports a missing binary as exit code 127', async () => {
    const r = await runCommand('terrapin-no-such-binary', [], { cwd });
    expect(r.exitCode).toBe(127);
    expect(r.output).toMatch(/ENOENT/);
  });

  it('passes only PATH, HOME and the given variables to the command', async () => {
    process.env.GITHUB_TOKEN = 'ghs_shouldneverleakintoachildprocess1234';
    process.env.WEBHOOK_SECRET = 'webhook-secret-value';
    process.env.PRIVATE_KEY = 'private-key-value';
    const r = await runCommand('sh', ['-c', 'env'], { cwd, env: { EXTRA: 'yes' } });
    const names = r.output
      .split('\n')
      .map((l) => l.split('=')[0])
      .filter((n) => n && n !== 'PWD' && n !== 'SHLVL' && n !== '_');
    expect(names.sort()).toEqual(['EXTRA', 'HOME', 'PATH']);
  });

  it('scrubs token-shaped strings and given secrets from the output', async () => {
    const script = 'echo "token ghs_abcdefghijklmnopqrstuvwxyz0123"; echo "custom s3cr3t-value here" >&2';
    const r = await runCommand('sh', ['-c', script], { cwd, secrets: ['s3cr3t-value'] });
    expect(r.output).not.toContain('ghs_abcdefghijklmnopqrstuvwxyz0123');
    expect(r.output).not.toContain('s3cr3t-value');
    expect(r.output).toContain('token [REDACTED]');
    expect(r.output).toContain('custom [REDACTED] here');
  });

  it('reports a timeout as exit code 124', async () => {
    const r = await runCommand('sleep', ['5'], { cwd, timeoutMs: 200 });
    expect(r.exitCode).toBe(124);
  });
});

describe('runCommand in an activity', () => {
  it('heartbeats while the command runs', async () => {
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const r = (await env.run(() => runCommand('sleep', ['1'], { cwd, heartbeatEveryMs: 100 }))) as RunResult;
    expect(r.exitCode).toBe(0);
    expect(beats.length).toBeGreaterThanOrEqual(5);
    expect(beats[0]).toMatchObject({ command: 'sleep' });
  });

  it('stops the command when the activity is cancelled', async () => {
    const env = new MockActivityEnvironment();
    const started = Date.now();
    // Cancelled once the command runs (its first heartbeat), not after a guessed delay.
    env.once('heartbeat', () => env.cancel());
    const running = env.run(() => runCommand('sleep', ['30'], { cwd, heartbeatEveryMs: 50, killGraceMs: 1_000 }));
    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('kills a command that ignores SIGTERM after the grace period', async () => {
    const env = new MockActivityEnvironment();
    const dir = await mkdtemp(join(tmpdir(), 'terrapin-term-'));
    // The script says when it ignores SIGTERM: cancelled only then, so SIGTERM is really ignored.
    const script = 'trap "" TERM; touch ready; sleep 30 & wait; sleep 30';
    const running = env.run(() => runCommand('sh', ['-c', script], { cwd: dir, killGraceMs: 500 }));
    await untilExists(join(dir, 'ready'));
    const cancelled = Date.now();
    env.cancel();
    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
    // Not before the grace period (SIGTERM alone did not stop it), and not long after.
    expect(Date.now() - cancelled).toBeGreaterThanOrEqual(450);
    expect(Date.now() - cancelled).toBeLessThan(10_000);
  });
});

describe('runCommand through a sandbox wrapper', () => {
  /** A stand-in for bubblewrap: fails its own set-up (as bwrap does when it loses a race) for the first `failures` runs. */
  const flakySandbox = (counter: string, failures: number, message: string) => (command: { file: string; args: readonly string[]; env: Record<string, string> }) => ({
    file: 'sh',
    args: ['-c', `n=$(cat "${counter}" 2>/dev/null || echo 0); echo $((n+1)) > "${counter}"; if [ "$n" -lt ${failures} ]; then echo '${message}' >&2; exit 1; fi; exec "$@"`, 'sandbox', command.file, ...command.args],
    env: command.env,
  });

  it('runs the command again when the sandbox failed to set itself up (the command never started)', async () => {
    const counter = join(await mkdtemp(join(tmpdir(), 'terrapin-retry-')), 'runs');
    const r = await runCommand('sh', ['-c', 'echo ran'], { cwd, wrap: flakySandbox(counter, 2, 'bwrap: loopback: Failed RTM_NEWADDR: No child processes') });
    expect(r).toMatchObject({ exitCode: 0, output: 'ran' });
    expect((await readFile(counter, 'utf8')).trim()).toBe('3');
  });

  it('a cancelled activity is not retried when the sandbox then reports its network set-up as failed', async () => {
    const env = new MockActivityEnvironment();
    let connects = 0;
    let failSetup: (() => void) | undefined;
    const network = {
      extraPipes: 3,
      connect: () => {
        if (++connects > 1) return Promise.reject(new NetworkSetupError('lost a race again'));
        return new Promise<void>((_, reject) => (failSetup = () => reject(new NetworkSetupError('lost a race'))));
      },
      close: () => undefined,
    };
    const running = env.run(() => runCommand('sleep', ['30'], { cwd, killGraceMs: 1_000, wrap: (c) => ({ ...c, network }) }));
    while (!failSetup) await new Promise((r) => setImmediate(r));
    env.cancel();
    failSetup();
    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
    expect(connects).toBe(1);
  });

  it('gives up after three set-up failures, and never repeats a command that failed by itself', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'terrapin-retry-'));
    const setup = await runCommand('sh', ['-c', 'echo ran'], { cwd, wrap: flakySandbox(join(dir, 'a'), 5, 'terrapin: could not give the sandbox its network: slirp4netns exited') });
    expect(setup.exitCode).toBe(1);
    expect((await readFile(join(dir, 'a'), 'utf8')).trim()).toBe('3');
    const own = await runCommand('sh', ['-c', 'echo Initializing; echo bwrap: loopback: said by the command itself; exit 1'], { cwd, wrap: flakySandbox(join(dir, 'b'), 0, '') });
    expect(own.exitCode).toBe(1);
    expect((await readFile(join(dir, 'b'), 'utf8')).trim()).toBe('1');
  });
});
