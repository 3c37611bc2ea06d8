// A private network for sandboxed repository code. Terraform and hooks keep the internet (providers,
// remote backends) but cannot reach anything listening on this host's loopback: the embedded Temporal
// (which has no authentication: whoever reaches it can signal workflows), its UI, the webhook server, a
// local database. bubblewrap gives the sandbox its own network namespace; slirp4netns connects that
// namespace to the outside through a user-mode NAT with the host's loopback switched off.
//
// Set up by whoever spawns bubblewrap (runCommand in process.ts), around that one child: bubblewrap gets two
// extra pipes (fd 3: it reports the sandbox's pid; fd 4: it holds the command until told to go), and the
// command starts only once slirp4netns is attached. (A launcher process per command did this before, and
// its node start-up cost ~100 ms on every terraform step.)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** slirp4netns's built-in DNS forwarder, as seen from inside the namespace. */
const SLIRP_DNS = '10.0.2.3';
const SLIRP = 'slirp4netns';

/** Whether slirp4netns can be run here (asked once per process). */
let available: boolean | undefined;
export function privateNetworkAvailable(): boolean {
  available ??= spawnSync(SLIRP, ['--version'], { stdio: 'ignore' }).status === 0;
  return available;
}

/** The sandbox's network could not be set up: the command never started, so running it again is safe. */
export class NetworkSetupError extends Error {
  constructor(reason: string) {
    super(`terrapin: could not give the sandbox its network: ${reason}`);
  }
}

/** bubblewrap as spawned with its two extra pipes (`stdio[3]`, `stdio[4]`). */
export interface SpawnedSandbox {
  pid?: number;
  stdio: readonly unknown[];
}

export interface PrivateNetwork {
  /**
   * Attaches slirp4netns to the namespace of the bubblewrap spawned from this command (with pipes at fds
   * 3 and 4), then lets the command start. Throws NetworkSetupError if that failed: the command never ran.
   */
  connect(bwrap: SpawnedSandbox): Promise<void>;
  /** Stops slirp4netns and removes the sandbox's resolv.conf. After the command ended, or if it never started. */
  close(): void;
}

export interface NetworkedCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
  network: PrivateNetwork;
}

/** Inserts the network options before bubblewrap's `--`: later binds win, so resolv.conf is ours. */
export function networkArgs(bwrapArgv: readonly string[], resolvConf: string): string[] {
  const end = bwrapArgv.indexOf('--');
  if (end < 1) throw new Error('expected a bubblewrap argv with "--" before the command');
  const extra = ['--unshare-net', '--info-fd', '3', '--block-fd', '4', '--ro-bind', resolvConf, '/etc/resolv.conf'];
  return [...bwrapArgv.slice(1, end), ...extra, ...bwrapArgv.slice(end)];
}

/**
 * A bubblewrap command line (`['bwrap', …, '--', cmd, …]`) with a private network: bubblewrap with the
 * namespace options added, `env` exactly as its environment, and the network to connect once it is spawned.
 */
export function withPrivateNetwork(bwrapArgv: readonly string[], env: Record<string, string> = {}): NetworkedCommand {
  const dir = mkdtempSync(join(tmpdir(), 'terrapin-net-'));
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, `nameserver ${SLIRP_DNS}\n`, { mode: 0o644 });
  let args: string[];
  try {
    args = networkArgs(bwrapArgv, resolvConf);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let slirp: ChildProcess | undefined;
  let closed = false;
  const network: PrivateNetwork = {
    async connect(bwrap) {
      try {
        slirp = await attach(bwrap, (child) => (slirp = child));
      } catch (err) {
        throw err instanceof NetworkSetupError ? err : new NetworkSetupError((err as Error).message);
      }
    },
    close() {
      if (closed) return;
      closed = true;
      // Not waited for: its exit tears down the tap device, which takes the kernel 10-20 ms.
      if (slirp?.pid !== undefined && slirp.exitCode === null && slirp.signalCode === null) slirp.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return { file: bwrapArgv[0]!, args, env, network };
}

/** Reads bubblewrap's `--info-fd` JSON until it parses: `{ "child-pid": N, … }`. */
function childPid(info: Readable): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    info.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      try {
        const pid = (JSON.parse(text) as { 'child-pid'?: number })['child-pid'];
        if (typeof pid === 'number') resolve(pid);
      } catch {
        // not complete yet
      }
    });
    info.on('end', () => reject(new Error('bubblewrap exited before its sandbox was set up')));
    info.on('error', () => reject(new Error('bubblewrap exited before its sandbox was set up')));
  });
}

async function loopbackUp(pid: number, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const routes = await readFile(`/proc/${pid}/net/fib_trie`, 'utf8').catch(() => '');
    if (routes.includes('127.0.0.1')) return;
    await new Promise((r) => setTimeout(r, 2));
  }
}

function ready(slirp: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    (slirp.stdio[4] as Readable).once('data', () => resolve());
    slirp.once('exit', (code) => reject(new Error(`slirp4netns exited (${code}) before the network was ready`)));
    slirp.once('error', (err) => reject(new Error(`slirp4netns could not start: ${err.message}`)));
  });
}

/** slirp4netns on the sandbox's namespace; resolves once the command was let go. `started` hears of slirp4netns as soon as it runs, so it is stopped even if this fails. */
async function attach(bwrap: SpawnedSandbox, started: (slirp: ChildProcess) => void): Promise<ChildProcess> {
  const info = bwrap.stdio[3] as Readable | undefined;
  const block = bwrap.stdio[4] as Writable | undefined;
  if (!info || !block) throw new Error('bubblewrap was started without its info and block pipes');
  // A bubblewrap that dies early closes these under us: that is reported through its exit, not a crash.
  info.on('error', () => undefined);
  block.on('error', () => undefined);
  const pid = await childPid(info);
  // bubblewrap brings up the namespace's loopback itself: slirp4netns configuring tap0 at the same time
  // makes that fail now and then ("Failed RTM_NEWADDR"), so it waits for lo's address.
  await loopbackUp(pid);
  // By path, not pid: given a pid, slirp4netns also joins the process's user namespace, which bubblewrap
  // replaces with a nested one (when the sandbox uid differs) that does not own the network namespace.
  // Without root, slirp4netns must first join the sandbox's user namespace to be allowed into its
  // network namespace (bubblewrap makes no nested one then: that is root's case only).
  const userns = process.getuid?.() === 0 ? [] : [`--userns-path=/proc/${pid}/ns/user`];
  // fd 3 is its exit fd: it ends when that pipe closes, so it cannot outlive a worker that died.
  const slirp = spawn(SLIRP, ['--configure', '--mtu=65520', '--disable-host-loopback', '--exit-fd=3', '--ready-fd=4', ...userns, '--netns-type=path', `/proc/${pid}/ns/net`, 'tap0'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' },
  });
  started(slirp);
  for (const stream of slirp.stdio.slice(2)) (stream as Readable | null)?.on('error', () => undefined);
  let slirpErrors = '';
  slirp.stderr!.on('data', (c: Buffer) => (slirpErrors += c.toString('utf8')));
  await ready(slirp).catch((err: Error) => {
    throw new Error(`${err.message}: ${slirpErrors.trim().split('\n').slice(-3).join(' ')}`);
  });
  // The command starts only now, with its network in place. (Had anything failed, it would have found
  // a namespace with no route out: never the host's network.)
  block.end('1');
  return slirp;
}
