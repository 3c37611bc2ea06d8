// A private network for sandboxed repository code. Terraform and hooks keep the internet (providers,
// remote backends) but cannot reach anything listening on this host's loopback: the embedded Temporal
// (which has no authentication: whoever reaches it can signal workflows), its UI, the webhook server, a
// local database. bubblewrap gives the sandbox its own network namespace; slirp4netns connects that
// namespace to the outside through a user-mode NAT with the host's loopback switched off.
//
// Set up by whoever spawns the command (runCommand in process.ts), with no process of its own: a node
// launcher per command cost ~100 ms of start-up on every terraform step. The command is
//   sh -c '"$@"; exit $?' sh bwrap --args 5 … --unshare-net --json-status-fd 3 --block-fd 4 … -- cmd
// - sh stays bubblewrap's parent (bubblewrap dies with its parent) and outlives a worker that crashed, so
//   a running apply still finishes, as README's failure modes say;
// - sh and bubblewrap run with PATH alone: the command's environment reaches bubblewrap through fd 5 as
//   --setenv arguments (never argv, which every user of the host can read), so nothing outside the sandbox
//   interprets it;
// - fd 3 tells the sandbox's pid and stays open until bubblewrap exits: slirp4netns gets it as its exit fd,
//   so it lives exactly as long as the sandbox, worker or not;
// - fd 4 holds the command until slirp4netns is attached.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** The spawned command, with its extra pipes: stdio[3] (status), stdio[4] (go-ahead), stdio[5] (arguments). */
export interface SpawnedSandbox {
  pid?: number;
  stdio: readonly unknown[];
}

export interface PrivateNetwork {
  /** How many pipes the command needs beyond stdin, stdout and stderr (fds 3, 4, 5). */
  readonly extraPipes: number;
  /**
   * Hands bubblewrap the command's environment, attaches slirp4netns to the sandbox's network namespace,
   * then lets the command start. Throws NetworkSetupError if that failed: the command never ran.
   */
  connect(spawned: SpawnedSandbox): Promise<void>;
  /** Stops slirp4netns if it still runs, and removes the sandbox's resolv.conf. Once the command ended or never started. */
  close(): void;
}

export interface NetworkedCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
  network: PrivateNetwork;
}

const STATUS_FD = 3;
const BLOCK_FD = 4;
const ARGS_FD = 5;
/** Not `exec "$@"`: sh must stay bubblewrap's parent. */
const KEEP_PARENT = '"$@"; exit $?';

/** Inserts the network options before bubblewrap's `--`: later binds win, so resolv.conf is ours. */
export function networkArgs(bwrapArgv: readonly string[], resolvConf: string): string[] {
  const end = bwrapArgv.indexOf('--');
  if (end < 1) throw new Error('expected a bubblewrap argv with "--" before the command');
  const extra = ['--unshare-net', '--json-status-fd', String(STATUS_FD), '--block-fd', String(BLOCK_FD), '--ro-bind', resolvConf, '/etc/resolv.conf'];
  return [...bwrapArgv.slice(1, end), ...extra, ...bwrapArgv.slice(end)];
}

/** bubblewrap's arguments that give the command exactly `env`, NUL-separated for `--args`. */
export function environmentArgs(env: Record<string, string>): string {
  const args = ['--clearenv', ...Object.entries(env).flatMap(([name, value]) => ['--setenv', name, value])];
  if (args.some((a) => a.includes('\0'))) throw new Error('an environment variable holds a NUL byte');
  return `${args.join('\0')}\0`;
}

/**
 * A bubblewrap command line (`['bwrap', …, '--', cmd, …]`) with a private network, `env` being what the
 * sandboxed command gets, and the network that runCommand connects once the command is spawned.
 */
export function withPrivateNetwork(bwrapArgv: readonly string[], env: Record<string, string> = {}): NetworkedCommand {
  const envArgs = environmentArgs(env);
  const dir = mkdtempSync(join(tmpdir(), 'terrapin-net-'));
  const resolvConf = join(dir, 'resolv.conf');
  let args: string[];
  try {
    writeFileSync(resolvConf, `nameserver ${SLIRP_DNS}\n`, { mode: 0o644 });
    args = ['-c', KEEP_PARENT, 'sh', bwrapArgv[0]!, '--args', String(ARGS_FD), ...networkArgs(bwrapArgv, resolvConf)];
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let slirp: ChildProcess | undefined;
  let closed = false;
  const network: PrivateNetwork = {
    extraPipes: 3,
    async connect(spawned) {
      try {
        await attach(spawned, envArgs, join(dir, 'slirp4netns.log'), (child) => (slirp = child));
      } catch (err) {
        throw err instanceof NetworkSetupError ? err : new NetworkSetupError((err as Error).message);
      }
    },
    close() {
      if (closed) return;
      closed = true;
      // It ends by itself with bubblewrap; this is for a set-up that failed half-way. Not waited for: its
      // exit tears down the tap device, which takes the kernel 10-20 ms.
      if (slirp?.pid !== undefined && slirp.exitCode === null && slirp.signalCode === null) slirp.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return { file: '/bin/sh', args, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, network };
}

/** Reads bubblewrap's first `--json-status-fd` line: `{ "child-pid": N, … }`. */
function childPid(status: Readable): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const newline = text.indexOf('\n');
      if (newline < 0) return;
      status.off('data', onData);
      // Paused until slirp4netns has its copy of this pipe (its exit fd).
      status.pause();
      try {
        const pid = (JSON.parse(text.slice(0, newline)) as { 'child-pid'?: number })['child-pid'];
        if (typeof pid === 'number') resolve(pid);
        else reject(new Error('bubblewrap reported no child pid'));
      } catch {
        reject(new Error('bubblewrap reported no child pid'));
      }
    };
    status.on('data', onData);
    status.once('end', () => reject(new Error('bubblewrap exited before its sandbox was set up')));
    status.once('error', () => reject(new Error('bubblewrap exited before its sandbox was set up')));
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

/** The set-up, in order; `started` hears of slirp4netns as soon as it runs, so it is stopped even if this fails. */
async function attach(spawned: SpawnedSandbox, envArgs: string, logFile: string, started: (slirp: ChildProcess) => void): Promise<void> {
  const status = spawned.stdio[STATUS_FD] as Readable | undefined;
  const block = spawned.stdio[BLOCK_FD] as Writable | undefined;
  const argsPipe = spawned.stdio[ARGS_FD] as Writable | undefined;
  if (!status || !block || !argsPipe) throw new Error('the sandbox was started without its status, go-ahead and arguments pipes');
  // A bubblewrap that dies early closes these under us: that is reported through its exit, not a crash.
  for (const stream of [status, block, argsPipe]) stream.on('error', () => undefined);
  argsPipe.end(envArgs);
  const pid = await childPid(status);
  // bubblewrap brings up the namespace's loopback itself: slirp4netns configuring tap0 at the same time
  // makes that fail now and then ("Failed RTM_NEWADDR"), so it waits for lo's address.
  await loopbackUp(pid);
  // By path, not pid: given a pid, slirp4netns also joins the process's user namespace, which bubblewrap
  // replaces with a nested one (when the sandbox uid differs) that does not own the network namespace.
  // Without root, slirp4netns must first join the sandbox's user namespace to be allowed into its
  // network namespace (bubblewrap makes no nested one then: that is root's case only).
  const userns = process.getuid?.() === 0 ? [] : [`--userns-path=/proc/${pid}/ns/user`];
  // Its exit fd is bubblewrap's status pipe (readable once bubblewrap reports the exit, closed when it is
  // gone). A process group of its own: a signal to the worker's group leaves a running sandbox its network.
  // Its messages go to a file, not a pipe to the worker: one written after the worker died would kill it.
  const log = openSync(logFile, 'w', 0o600);
  let slirp: ChildProcess;
  try {
    slirp = spawn(SLIRP, ['--configure', '--mtu=65520', '--disable-host-loopback', '--exit-fd=3', '--ready-fd=4', ...userns, '--netns-type=path', `/proc/${pid}/ns/net`, 'tap0'], {
      stdio: ['ignore', 'ignore', log, status, 'pipe'],
      env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' },
      detached: true,
    });
  } finally {
    closeSync(log);
    // slirp4netns holds its own copy now; this one is drained, so that runCommand sees it end.
    status.resume();
  }
  started(slirp);
  (slirp.stdio[4] as Readable | null)?.on('error', () => undefined);
  await ready(slirp).catch((err: Error) => {
    const said = readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join(' ');
    throw new Error(said ? `${err.message}: ${said}` : err.message);
  });
  // The command starts only now, with its network in place. (Had anything failed, it would have found
  // a namespace with no route out: never the host's network.)
  block.end('1');
}
