// The sandbox terraform and hooks run in: the arguments it is built from, how the mode is chosen, and what
// a command inside really sees (real bubblewrap, as on the servers).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { untilExists } from '../helpers/until-exists.ts';
import { ConfigError } from '../../app/config.ts';
import { startupSandbox } from '../../app/worker.ts';
import { runCommand, type RunResult } from '../../activities/process.ts';
import {
  binaryMount,
  bubblewrapArgs,
  describeSandbox,
  findBinary,
  probeBubblewrap,
  resolveSandbox,
  SANDBOX_UID,
  sandboxUnavailableMessage,
  SandboxUnavailableError,
  wrapCommand,
  type Sandbox,
} from '../../activities/sandbox.ts';

const SECRET = 'terrapin-sandbox-unit-secret-93ac';

describe('arguments', () => {
  test('isolates PID, IPC, UTS and user namespaces, as nobody, with fresh /proc, /dev and /tmp before the binds', () => {
    const args = bubblewrapArgs(['--ro-bind', '/usr', '/usr'], [{ path: '/tmp/x/checkout', writable: true }, { path: '/opt/tf', writable: false }]);
    for (const flag of ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-user', '--die-with-parent', '--new-session']) expect(args).toContain(flag);
    expect(args.join(' ')).toContain(`--uid ${SANDBOX_UID} --gid ${SANDBOX_UID}`);
    expect(args.join(' ')).toContain('--proc /proc --dev /dev --tmpfs /tmp --ro-bind /usr /usr --bind /tmp/x/checkout /tmp/x/checkout --ro-bind /opt/tf /opt/tf');
    // The network namespace is sandbox-network.ts's to make (with slirp4netns), not these arguments'.
    expect(args).not.toContain('--unshare-net');
    expect(args).not.toContain('--unshare-all');
  });

  test('wrapCommand mounts the operator paths first (optional), then the run dirs, and keeps the environment out of argv', () => {
    const sandbox: Sandbox = { kind: 'bubblewrap', bwrap: '/usr/bin/bwrap', system: [], paths: [{ path: '/srv/states', writable: true }, { path: '/etc/custom-ca', writable: false }], network: 'host' };
    const wrapped = wrapCommand(sandbox, { checkout: '/d/work/o/r/pr-1/abc', runDir: '/d/work/o/r/pr-1/abc.terrapin/root--default/run', pluginCache: '/d/plugin-cache/repos/o/r', readOnly: ['/opt/terraform'] }, {
      file: 'terraform',
      args: ['plan', '-no-color'],
      env: { TF_VAR_password: SECRET, PATH: '/usr/bin' },
      cwd: '/d/work/o/r/pr-1/abc/infra',
    });
    expect(wrapped.file).toBe('/usr/bin/bwrap');
    const line = wrapped.args.join(' ');
    expect(line).toContain(
      '--bind-try /srv/states /srv/states --ro-bind-try /etc/custom-ca /etc/custom-ca --ro-bind /opt/terraform /opt/terraform --bind /d/work/o/r/pr-1/abc /d/work/o/r/pr-1/abc ' +
        '--ro-bind-try /d/work/o/r/pr-1/abc/.git /d/work/o/r/pr-1/abc/.git ' +
        '--bind /d/work/o/r/pr-1/abc.terrapin/root--default/run /d/work/o/r/pr-1/abc.terrapin/root--default/run --bind /d/plugin-cache/repos/o/r /d/plugin-cache/repos/o/r',
    );
    expect(line.endsWith('--chdir /d/work/o/r/pr-1/abc/infra -- terraform plan -no-color')).toBe(true);
    expect(line).not.toContain(SECRET);
    expect(wrapped.env.TF_VAR_password).toBe(SECRET);
  });

  test('with a private network (the default): bubblewrap under sh, its own network namespace, and the environment neither in argv nor outside the sandbox', () => {
    const sandbox: Sandbox = { kind: 'bubblewrap', bwrap: '/usr/bin/bwrap', system: [], paths: [] };
    const wrapped = wrapCommand(sandbox, { checkout: '/d/c', runDir: '/d/c.terrapin/x/run', pluginCache: '/d/p' }, { file: 'terraform', args: ['plan'], env: { TF_VAR_password: SECRET }, cwd: '/d/c' });
    try {
      expect(wrapped.file).toBe('/bin/sh');
      expect(wrapped.args.slice(0, 6)).toEqual(['-c', '"$@"; exit $?', 'sh', '/usr/bin/bwrap', '--args', '5']);
      const line = wrapped.args.join(' ');
      expect(line).toMatch(/--chdir \/d\/c --unshare-net --json-status-fd 3 --block-fd 4 --ro-bind \S+\/resolv\.conf \/etc\/resolv\.conf -- terraform plan$/);
      expect(line).not.toContain(SECRET);
      // sh and bubblewrap run outside the sandbox: PATH is all they get; the command's environment is data on fd 5.
      expect(wrapped.env).toEqual({ PATH: process.env.PATH });
      expect(wrapped.network?.extraPipes).toBe(3);
    } finally {
      wrapped.network?.close();
    }
  });

  test('a binary under the system dirs needs no mount of its own; one elsewhere gets its dir, read-only', async () => {
    expect(binaryMount('/usr/local/bin/terraform')).toEqual([]);
    expect(binaryMount('/opt/hashicorp/terraform')).toEqual(['/opt/hashicorp']);
    expect(binaryMount(undefined)).toEqual([]);
    expect(await findBinary('sh')).toMatch(/\/(dash|bash|sh)$/);
    expect(await findBinary('terrapin-no-such-binary')).toBeUndefined();
  });
});

describe('mode', () => {
  const failing = async () => ({ ok: false as const, reason: 'bwrap: No permissions to create new namespace' });
  const working = async () => ({ ok: true as const });

  test('none never probes and is logged as a loud warning', async () => {
    let probed = false;
    const sandbox = await resolveSandbox({ sandbox: 'none', paths: [] }, async () => ((probed = true), { ok: true }));
    expect(sandbox).toEqual({ kind: 'none' });
    expect(probed).toBe(false);
    expect(describeSandbox(sandbox)).toMatchObject({ level: 'warn', message: expect.stringMatching(/UNSANDBOXED/) });
  });

  test('a private network without slirp4netns is unavailable under auto and stops a bubblewrap start; host does without it', async () => {
    const noSlirp = () => false;
    const unavailable = await resolveSandbox({ sandbox: 'auto', paths: [] }, working, 'bwrap', noSlirp);
    expect(unavailable).toMatchObject({ kind: 'unavailable', reason: expect.stringMatching(/slirp4netns is not installed.*loopback/) });
    await expect(resolveSandbox({ sandbox: 'bubblewrap', paths: [] }, working, 'bwrap', noSlirp)).rejects.toThrow(/slirp4netns/);
    const host = await resolveSandbox({ sandbox: 'auto', paths: [], network: 'host' }, working, 'bwrap', noSlirp);
    expect(host).toMatchObject({ kind: 'bubblewrap', network: 'host' });
    expect(describeSandbox(host)).toMatchObject({ level: 'warn', message: expect.stringMatching(/host network.*mTLS or an API key/) });
  });

  test('auto uses bubblewrap when the probe works, and is unavailable (plans refused) when it does not', async () => {
    const paths = [{ path: '/srv/states', writable: true }];
    expect(await resolveSandbox({ sandbox: 'auto', paths }, working)).toMatchObject({ kind: 'bubblewrap', bwrap: 'bwrap', paths });
    const unavailable = await resolveSandbox({ sandbox: 'auto', paths }, failing);
    expect(unavailable).toEqual({ kind: 'unavailable', reason: 'bwrap: No permissions to create new namespace' });
    expect(describeSandbox(unavailable).level).toBe('warn');
    expect(sandboxUnavailableMessage('bwrap: No permissions to create new namespace')).toMatch(/runs terraform and hooks only inside a sandbox[\s\S]*install[\s\S]*runner\.sandbox: none/);
  });

  test('bubblewrap refuses to start when the probe fails', async () => {
    await expect(resolveSandbox({ sandbox: 'bubblewrap', paths: [] }, failing)).rejects.toThrow(SandboxUnavailableError);
    await expect(resolveSandbox({ sandbox: 'bubblewrap', paths: [] }, failing)).rejects.toThrow(/runner\.sandbox is "bubblewrap" but bubblewrap does not work on this host: bwrap: No permissions/);
  });

  test('the real probe works on this host and fails with a reason for a bwrap that is not there', async () => {
    expect(await probeBubblewrap()).toEqual({ ok: true });
    const missing = await probeBubblewrap('/nonexistent/bwrap');
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.reason).toMatch(/ENOENT|not found/i);
  });
});

describe('worker start', () => {
  const policy = (sandbox: 'auto' | 'bubblewrap' | 'none') => ({ operatorPolicy: { repositories: [], runner: { sandbox, paths: [] } } });
  const capture = () => {
    const lines: Array<Record<string, unknown>> = [];
    return { lines, logger: pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) }) };
  };

  test('logs the chosen mode once: bubblewrap as info, none and an unusable host as warnings', async () => {
    const ok = capture();
    expect((await startupSandbox(policy('auto'), ok.logger)).kind).toBe('bubblewrap');
    expect(ok.lines).toMatchObject([{ level: 30, sandbox: 'bubblewrap', msg: 'terraform and hooks run sandboxed (bubblewrap) in a private network' }]);
    const none = capture();
    expect(await startupSandbox(policy('none'), none.logger)).toEqual({ kind: 'none' });
    expect(none.lines).toMatchObject([{ level: 40, sandbox: 'none', msg: expect.stringMatching(/UNSANDBOXED/) }]);
    const broken = capture();
    expect((await startupSandbox(policy('auto'), broken.logger, async () => ({ ok: false, reason: 'bwrap: No permissions to create new namespace' }))).kind).toBe('unavailable');
    expect(broken.lines).toMatchObject([{ level: 40, sandbox: 'unavailable', msg: expect.stringMatching(/every plan and apply is refused/) }]);
  });

  test('runner.sandbox bubblewrap on a host where it does not work stops the start with one clear line', async () => {
    const { logger } = capture();
    const start = startupSandbox(policy('bubblewrap'), logger, async () => ({ ok: false, reason: 'bwrap: No permissions to create new namespace' }));
    await expect(start).rejects.toBeInstanceOf(ConfigError);
    await expect(start).rejects.toThrow('runner.sandbox is "bubblewrap" but bubblewrap does not work on this host: bwrap: No permissions to create new namespace');
  });
});

describe('inside the sandbox', () => {
  let base: string;
  let checkout: string;
  let runDir: string;
  let sandbox: Extract<Sandbox, { kind: 'bubblewrap' }>;
  const wrap = (): NonNullable<Parameters<typeof runCommand>[2]['wrap']> => (command) => wrapCommand(sandbox, { checkout, runDir, pluginCache: join(base, 'cache') }, command);

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'terrapin-sandbox-unit-'));
    checkout = join(base, 'checkout');
    runDir = join(base, 'checkout.terrapin', 'run');
    for (const dir of [checkout, runDir, join(base, 'cache')]) await mkdir(dir, { recursive: true });
    await writeFile(join(base, 'secret.pem'), SECRET);
    const resolved = await resolveSandbox({ sandbox: 'auto', paths: [] });
    if (resolved.kind !== 'bubblewrap') throw new Error(`bubblewrap must work on the test host: ${JSON.stringify(resolved)}`);
    sandbox = resolved;
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  test('runs as nobody, sees its checkout but not the files beside it, the worker process, /root or all of /etc', async () => {
    process.env.TERRAPIN_SANDBOX_UNIT = SECRET;
    try {
      const script = [
        'id -u',
        'echo in-checkout > in-checkout.txt && echo wrote',
        `cat ${join(base, 'secret.pem')} 2>&1 || echo no-secret-file`,
        `cat /proc/${process.pid}/environ 2>&1 || echo no-worker-environ`,
        'cat /proc/1/environ | tr "\\0" "\\n" | grep -c TERRAPIN_SANDBOX_UNIT || true',
        'ls /root 2>&1 || echo no-root',
        'ls /etc | tr "\\n" " "',
      ].join('; ');
      const r = await runCommand('sh', ['-c', script], { cwd: checkout, env: {}, wrap: wrap() });
      expect(r.exitCode).toBe(0);
      const lines = r.output.split('\n');
      expect(lines[0]).toBe(String(SANDBOX_UID));
      expect(r.output).toContain('wrote');
      expect(await readFile(join(checkout, 'in-checkout.txt'), 'utf8')).toBe('in-checkout\n');
      expect(r.output).toContain('no-secret-file');
      expect(r.output).toContain('no-worker-environ');
      expect(r.output).toContain('no-root');
      expect(r.output).not.toContain(SECRET);
      expect(r.output).not.toMatch(/\bshadow\b|\bsudoers\b|\bhostname\b/);
    } finally {
      delete process.env.TERRAPIN_SANDBOX_UNIT;
    }
  });

  test("the checkout's .git is read-only inside: nothing can plant config that git would run outside the sandbox", async () => {
    await mkdir(join(checkout, '.git'), { recursive: true });
    await writeFile(join(checkout, '.git', 'config'), '[core]\n');
    const r = await runCommand('sh', ['-c', 'printf "[core]\\n\\tfsmonitor = touch /tmp/pwned\\n" >> .git/config 2>&1 || echo refused; mv .git gone 2>&1 || echo kept'], { cwd: checkout, wrap: wrap() });
    expect(r.output).toContain('refused');
    expect(r.output).toContain('kept');
    expect(await readFile(join(checkout, '.git', 'config'), 'utf8')).toBe('[core]\n');
  });

  test('cancelling sends SIGTERM to the command inside (its grace period is kept), then everything dies', async () => {
    const env = new MockActivityEnvironment();
    const marker = join(checkout, 'terminated.txt');
    // Cancelled once the script has set its trap (it says so), not after a guessed delay.
    const script = 'trap "echo graceful > terminated.txt; exit 3" TERM; touch graceful.ready; sleep 30 & wait';
    const running = env.run(() => runCommand('sh', ['-c', script], { cwd: checkout, killGraceMs: 5_000, heartbeatEveryMs: 50, wrap: wrap() }));
    await untilExists(join(checkout, 'graceful.ready'));
    env.cancel();
    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
    expect(await readFile(marker, 'utf8')).toBe('graceful\n');
  });

  test('a command that ignores SIGTERM is killed with everything it started after the grace period', async () => {
    const env = new MockActivityEnvironment();
    const started = Date.now();
    // Cancelled once the background child ignores SIGTERM too (it says so).
    const script = 'trap "" TERM; (trap "" TERM; touch ignoring.ready; sleep 30; echo survived > survived.txt) & sleep 30';
    const running = env.run(() => runCommand('sh', ['-c', script], { cwd: checkout, killGraceMs: 500, heartbeatEveryMs: 50, wrap: wrap() })) as Promise<RunResult>;
    await untilExists(join(checkout, 'ignoring.ready'));
    const cancelled = Date.now();
    env.cancel();
    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
    // SIGTERM alone did not stop it: killed at the end of the grace period, not before, not long after.
    expect(Date.now() - cancelled).toBeGreaterThanOrEqual(450);
    expect(Date.now() - started).toBeLessThan(10_000);
    // The PID namespace went with the wrapper: the background child is gone too ("[s]" keeps pgrep from matching itself).
    const left = await runCommand('sh', ['-c', 'pgrep -f "echo [s]urvived > survived.txt" || true'], { cwd: checkout });
    expect(left.output.trim()).toBe('');
    expect(existsSync(join(checkout, 'survived.txt'))).toBe(false);
  });

  test('a command missing inside the sandbox is exit code 127, as without it', async () => {
    const r = await runCommand('terrapin-no-such-binary', [], { cwd: checkout, wrap: wrap() });
    expect(r).toMatchObject({ exitCode: 127, output: 'terrapin-no-such-binary: command not found (ENOENT)' });
  });
});
