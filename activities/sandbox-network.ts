// A private network for sandboxed repository code. Terraform and hooks keep the internet (providers,
// remote backends) but cannot reach anything listening on this host's loopback: the embedded Temporal
// (which has no authentication: whoever reaches it can signal workflows), its UI, the webhook server, a
// local database. bubblewrap gives the sandbox its own network namespace; slirp4netns connects that
// namespace to the outside through a user-mode NAT with the host's loopback switched off.
//
// Run as a small launcher process (`node sandbox-network.ts -- bwrap …`), so that whoever runs the command
// sees one ordinary child: stdio passes straight through, its exit code is the sandboxed command's, and
// killing its process group ends bubblewrap and slirp4netns with it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LAUNCHER_PATH = fileURLToPath(import.meta.url);

/** slirp4netns's built-in DNS forwarder, as seen from inside the namespace. */
const SLIRP_DNS = '10.0.2.3';
const SLIRP = 'slirp4netns';

/** Whether slirp4netns can be run here (asked once per process). */
let available: boolean | undefined;
export function privateNetworkAvailable(): boolean {
  available ??= spawnSync(SLIRP, ['--version'], { stdio: 'ignore' }).status === 0;
  return available;
}

/** The launcher's own environment carries the sandbox's here, so that none of it (NODE_OPTIONS…) reaches node. */
const SANDBOX_ENV = 'TERRAPIN_SANDBOX_ENV';

/**
 * The command that runs a bubblewrap command line (`['bwrap', …, '--', cmd, …]`) with a private network:
 * the launcher, then the bubblewrap argv unchanged (the launcher adds the namespace options itself).
 * `env` is what bubblewrap (and so the sandboxed command) gets; the launcher runs with nothing else.
 */
export function withPrivateNetwork(bwrapArgv: readonly string[], env: Record<string, string> = {}): { file: string; args: string[]; env: Record<string, string> } {
  return { file: process.execPath, args: [LAUNCHER_PATH, '--', ...bwrapArgv], env: { PATH: '/usr/bin:/bin', [SANDBOX_ENV]: JSON.stringify(env) } };
}

function sandboxEnv(): Record<string, string> {
  try {
    const env = JSON.parse(process.env[SANDBOX_ENV] ?? '{}') as Record<string, string>;
    return typeof env === 'object' && env !== null ? env : {};
  } catch {
    return {};
  }
}

/** Inserts the network options before bubblewrap's `--`: later binds win, so resolv.conf is ours. */
export function networkArgs(bwrapArgv: readonly string[], resolvConf: string): string[] {
  const end = bwrapArgv.indexOf('--');
  if (end < 1) throw new Error('expected a bubblewrap argv with "--" before the command');
  const extra = ['--unshare-net', '--info-fd', '3', '--block-fd', '4', '--ro-bind', resolvConf, '/etc/resolv.conf'];
  return [...bwrapArgv.slice(1, end), ...extra, ...bwrapArgv.slice(end)];
}

/** Reads bubblewrap's `--info-fd` JSON until it parses: `{ "child-pid": N, … }`. */
function childPid(info: NodeJS.ReadableStream): Promise<number> {
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
    (slirp.stdio[4] as NodeJS.ReadableStream).once('data', () => resolve());
    slirp.once('exit', (code) => reject(new Error(`slirp4netns exited (${code}) before the network was ready`)));
  });
}

async function launch(bwrapArgv: string[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'terrapin-net-'));
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, `nameserver ${SLIRP_DNS}\n`, { mode: 0o644 });
  const bwrap = spawn(bwrapArgv[0]!, networkArgs(bwrapArgv, resolvConf), { stdio: ['inherit', 'inherit', 'inherit', 'pipe', 'pipe'], env: sandboxEnv() });
  const exited = new Promise<number>((resolve) =>
    bwrap.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0))),
  );
  bwrap.once('error', () => undefined);
  // A bubblewrap that dies early closes these under us: that is reported through its exit, not a crash here.
  for (const stream of [bwrap.stdio[3], bwrap.stdio[4]]) stream?.on('error', () => undefined);
  let slirp: ChildProcess | undefined;
  try {
    const pid = await childPid(bwrap.stdio[3] as NodeJS.ReadableStream);
    // bubblewrap brings up the namespace's loopback itself: slirp4netns configuring tap0 at the same time
    // makes that fail now and then ("Failed RTM_NEWADDR"), so it waits for lo's address.
    await loopbackUp(pid);
    // By path, not pid: given a pid, slirp4netns also joins the process's user namespace, which bubblewrap
    // replaces with a nested one (when the sandbox uid differs) that does not own the network namespace.
    // Without root, slirp4netns must first join the sandbox's user namespace to be allowed into its
    // network namespace (bubblewrap makes no nested one then: that is root's case only).
    const userns = process.getuid?.() === 0 ? [] : [`--userns-path=/proc/${pid}/ns/user`];
    slirp = spawn(SLIRP, ['--configure', '--mtu=65520', '--disable-host-loopback', '--ready-fd=4', ...userns, '--netns-type=path', `/proc/${pid}/ns/net`, 'tap0'], {
      stdio: ['ignore', 'ignore', 'pipe', 'ignore', 'pipe'],
      env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' },
    });
    for (const stream of [slirp.stdio[2], slirp.stdio[4]]) stream?.on('error', () => undefined);
    let slirpErrors = '';
    slirp.stderr!.on('data', (c: Buffer) => (slirpErrors += c.toString('utf8')));
    await ready(slirp).catch((err: Error) => {
      throw new Error(`${err.message}: ${slirpErrors.trim().split('\n').slice(-3).join(' ')}`);
    });
    // The command starts only now, with its network in place. (Had anything failed, it would have found
    // a namespace with no route out: never the host's network.)
    (bwrap.stdio[4] as NodeJS.WritableStream).end('1');
  } catch (err) {
    process.stderr.write(`terrapin: could not give the sandbox its network: ${(err as Error).message}\n`);
    bwrap.kill('SIGKILL');
    slirp?.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    return 125;
  }
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => bwrap.kill(signal));
  const code = await exited;
  slirp.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
  return code;
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  if (argv[0] !== '--' || argv.length < 3) {
    process.stderr.write('usage: sandbox-network.ts -- bwrap [options] -- command [args]\n');
    process.exit(2);
  }
  // Exit at once: nothing of the sandbox is worth waiting for once its command has ended.
  process.exit(await launch(argv.slice(1)));
}
