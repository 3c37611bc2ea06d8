// The sandbox's private network, with the real bubblewrap and slirp4netns: a service on this host's
// loopback (what the embedded Temporal is) is out of reach from inside, and the command still runs
// as an ordinary child (output, exit code, signals).
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
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
      '--unshare-net', '--info-fd', '3', '--block-fd', '4', '--ro-bind', '/r.conf', '/etc/resolv.conf',
      '--', 'sh', '-c', 'x',
    ]);
  });

  it('refuses an argv without a command separator', () => {
    expect(() => networkArgs(['bwrap', 'sh'], '/r.conf')).toThrow(/--/);
  });
});

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

    const { file, args } = withPrivateNetwork(bwrap(script));
    const isolated = await execa(file, args, { reject: false });
    expect(isolated.exitCode).toBe(0);
    expect(isolated.stdout).toContain(`REFUSED 127.0.0.1:${port}`);
    expect(isolated.stdout).toContain(`REFUSED 10.0.2.2:${port}`);
    expect(connections).toBe(before + 1);
  });

  it('has a network of its own with a route out and a resolver', async () => {
    const { file, args } = withPrivateNetwork(bwrap('cat /etc/resolv.conf; cat /proc/net/route | cut -f1 | sort -u | tr "\\n" " "'));
    const r = await execa(file, args, { reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('nameserver 10.0.2.3');
    expect(r.stdout).toContain('tap0');
  });

  it('passes output and the exit code through', async () => {
    const { file, args } = withPrivateNetwork(bwrap('echo to-out; echo to-err >&2; exit 7'));
    const r = await execa(file, args, { reject: false, all: true });
    expect(r.exitCode).toBe(7);
    expect(r.stdout).toBe('to-out');
    expect(r.stderr).toBe('to-err');
  });

  it('ends the sandboxed command when its process group is killed', async () => {
    const marker = `terrapin-net-kill-${process.pid}-${Date.now()}`;
    const { file, args } = withPrivateNetwork(bwrap(`echo started; exec -a ${marker} sleep 60`));
    const child = spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const found = async () => (await execa('pgrep', ['-f', `^${marker}`], { reject: false })).exitCode === 0;
    for (let i = 0; i < 50 && !(await found()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await found()).toBe(true);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
    // The kernel ends the sandbox's pid namespace with its init: wait for that, not a fixed time.
    for (let i = 0; i < 50; i++) {
      if (!(await found())) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the sandboxed command outlived its launcher');
  });
});
