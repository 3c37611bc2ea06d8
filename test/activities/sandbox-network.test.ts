// The sandbox's private network, with the real bubblewrap and slirp4netns: a service on this host's
// loopback (what the embedded Temporal is) is out of reach from inside, the command runs as an ordinary
// child of runCommand (output, exit code, its environment), and it outlives a worker that died, with its
// network, while slirp4netns never outlives it.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { runCommand, type WrappedCommand } from '../../activities/process.ts';
import { networkArgs, privateNetworkAvailable, withPrivateNetwork } from '../../activities/sandbox-network.ts';

/** A minimal bubblewrap sandbox around a bash script (the real one adds binds; the network part is the same). */
const bwrap = (script: string) => ['bwrap', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-pid', '--unshare-user', '--uid', '1000', '--gid', '1000', '--die-with-parent', '--', '/bin/bash', '-c', script];

/** Tries a TCP connection from bash and says which way it went. */
const probe = (host: string, port: number) => `if (exec 3<>/dev/tcp/${host}/${port}) 2>/dev/null; then echo "REACHED ${host}:${port}"; else echo "REFUSED ${host}:${port}"; fi`;

let server: Server;
let port: number;
let connections = 0;

beforeAll(async () => {
  server = createServer((socket) => {
    connections++;
    socket.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('networkArgs', () => {
  it('puts the namespace options and our resolv.conf before the command', () => {
    expect(networkArgs(['bwrap', '--ro-bind', '/', '/', '--', 'sh', '-c', 'x'], '/r.conf')).toEqual([
      '--ro-bind', '/', '/',
      '--unshare-net', '--json-status-fd', '3', '--block-fd', '4', '--ro-bind', '/r.conf', '/etc/resolv.conf',
      '--', 'sh', '-c', 'x',
    ]);
  });

  it('refuses an argv without a command separator', () => {
    expect(() => networkArgs(['bwrap', 'sh'], '/r.conf')).toThrow(/--/);
  });
});

/** Runs `script` in the minimal sandbox with a private network, through runCommand as terraform runs. */
const isolated = (script: string, seen?: (wrapped: WrappedCommand) => void, env?: Record<string, string>) =>
  runCommand('/bin/bash', ['-c', script], {
    cwd: tmpdir(),
    env,
    wrap: (command) => {
      const wrapped = withPrivateNetwork([...bwrap(script).slice(0, -3), command.file, ...command.args], command.env);
      seen?.(wrapped);
      return wrapped;
    },
  });

/** The pids of this process's children named `comm`. */
async function childrenNamed(pid: number, comm: string): Promise<number[]> {
  const tasks = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  const pids = tasks.trim().split(/\s+/).filter(Boolean).map(Number);
  const named = await Promise.all(pids.map(async (p) => ((await readFile(`/proc/${p}/comm`, 'utf8').catch(() => '')).trim() === comm ? p : undefined)));
  return named.filter((p): p is number => p !== undefined);
}

/** Running, not gone nor a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

describe('withPrivateNetwork (real bubblewrap and slirp4netns)', () => {
  it('finds slirp4netns on this machine (CI installs it)', () => {
    expect(privateNetworkAvailable()).toBe(true);
  });

  it('cannot reach a service on the host loopback, which the same probe reaches without it', async () => {
    const script = `${probe('127.0.0.1', port)}; ${probe('10.0.2.2', port)}`;
    const before = connections;
    const plain = await execa(bwrap(script)[0]!, bwrap(script).slice(1), { reject: false });
    expect(plain.stdout).toContain(`REACHED 127.0.0.1:${port}`);
    expect(connections).toBe(before + 1);

    const r = await isolated(script);
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain(`REFUSED 127.0.0.1:${port}`);
    expect(r.output).toContain(`REFUSED 10.0.2.2:${port}`);
    expect(connections).toBe(before + 1);
  });

  it('has a network of its own with a route out and a resolver', async () => {
    const r = await isolated('cat /etc/resolv.conf; cat /proc/net/route | cut -f1 | sort -u | tr "\\n" " "');
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain('nameserver 10.0.2.3');
    expect(r.output).toContain('tap0');
  });

  it('passes output and the exit code through, and leaves neither slirp4netns nor its resolv.conf behind', async () => {
    let wrapped: WrappedCommand | undefined;
    const r = await isolated('echo to-out; echo to-err >&2; exit 7', (w) => (wrapped = w));
    expect(r.exitCode).toBe(7);
    expect(r.stdout).toBe('to-out');
    expect(r.output).toBe('to-out\nto-err');
    const resolvConf = wrapped!.args[wrapped!.args.indexOf('/etc/resolv.conf') - 1]!;
    expect(resolvConf).toMatch(/resolv\.conf$/);
    expect(existsSync(resolvConf)).toBe(false);
    // Killed, not waited for (the kernel takes a while to tear its tap device down): wait for that here.
    for (let i = 0; i < 50 && (await childrenNamed(process.pid, 'slirp4netns')).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await childrenNamed(process.pid, 'slirp4netns')).toEqual([]);
  });

  it('reports a sandbox that could not be set up as a command that never ran (exit 125)', async () => {
    const r = await runCommand('true', [], { cwd: tmpdir(), wrap: (c) => withPrivateNetwork(['bwrap', '--terrapin-no-such-option', '--', c.file, ...c.args], c.env) });
    expect(r.exitCode).toBe(125);
    expect(r.output).toMatch(/terrapin: could not give the sandbox its network: bubblewrap exited before its sandbox was set up$/);
  });

  it('gives the command exactly its environment through a pipe: outside the sandbox only PATH, and nothing in argv', async () => {
    const secret = 'terrapin-net-secret 4a1 "quoted"\nsecond line';
    let wrapped: WrappedCommand | undefined;
    const r = await isolated('printf "%s" "$TERRAPIN_NET_SECRET"; echo; compgen -e | sort | tr "\\n" " "', (w) => (wrapped = w), { TERRAPIN_NET_SECRET: secret });
    expect(r.exitCode).toBe(0);
    expect(r.output.startsWith(`${secret}\n`)).toBe(true);
    expect(r.output.split('\n').at(-1)!.trim().split(' ')).toEqual(['HOME', 'PATH', 'PWD', 'SHLVL', 'TERRAPIN_NET_SECRET']);
    expect(wrapped!.file).toBe('/bin/sh');
    expect(Object.keys(wrapped!.env)).toEqual(['PATH']);
    expect(wrapped!.args.join(' ')).not.toContain('terrapin-net-secret');
  });

  it('a sandboxed command outlives a worker that died, with its network, and slirp4netns ends with it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'terrapin-net-orphan-'));
    try {
      // A stand-in worker: runCommand in a process of its own, killed with SIGKILL (no clean-up runs).
      // `finished` appears by rename, so it is never seen empty before the routes are written.
      const script = `echo > ${dir}/started; until [ -e ${dir}/go ]; do sleep 0.05; done; cut -f1 /proc/net/route | sort -u | tr "\\n" " " > ${dir}/routes; mv ${dir}/routes ${dir}/finished`;
      const argv = ['bwrap', '--ro-bind', '/', '/', '--bind', dir, dir, '--dev', '/dev', '--proc', '/proc', '--unshare-pid', '--unshare-user', '--uid', '1000', '--gid', '1000', '--die-with-parent', '--', '/bin/bash', '-c', script];
      const worker = `
        const { runCommand } = await import(${JSON.stringify(new URL('../../activities/process.ts', import.meta.url).href)});
        const { withPrivateNetwork } = await import(${JSON.stringify(new URL('../../activities/sandbox-network.ts', import.meta.url).href)});
        const argv = ${JSON.stringify(argv)};
        await runCommand(argv.at(-3), argv.slice(-2), { cwd: '/', wrap: (c) => withPrivateNetwork([...argv.slice(0, -3), c.file, ...c.args], c.env) });`;
      await chmod(dir, 0o777);
      const child = spawn(process.execPath, ['--input-type=module', '-e', worker], { stdio: ['ignore', 'ignore', 'inherit'] });
      const until = async (what: string, done: () => boolean) => {
        for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 50));
        if (!done()) throw new Error(`gave up waiting for ${what}`);
      };
      await until('the sandboxed command to start', () => existsSync(join(dir, 'started')));
      const slirps = await childrenNamed(child.pid!, 'slirp4netns');
      expect(slirps).toHaveLength(1);
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
      expect(alive(slirps[0]!)).toBe(true);
      await writeFile(join(dir, 'go'), '');
      await until('the sandboxed command to finish', () => existsSync(join(dir, 'finished')));
      expect(await readFile(join(dir, 'finished'), 'utf8')).toContain('tap0');
      // bubblewrap's status pipe is slirp4netns's exit fd: it ends once the sandbox is gone.
      await until('slirp4netns to end with the sandbox', () => !alive(slirps[0]!));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
