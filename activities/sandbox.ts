// Runs repository code (terraform, tofu, providers, provisioners, hooks) inside bubblewrap, so a pull
// request's code cannot read the App's private key, the webhook secret, Temporal's credentials or data,
// the worker's own environment (/proc/<pid>/environ), or other repositories' and PRs' work dirs.
// The sandbox sees: the system dirs needed to run terraform and sh (read-only; not /etc as a whole, not
// /root, /home, the app or the data dir), the binary's dir, this run's checkout and bot dir, the
// repository's plugin cache, and the operator's `runner.paths`. Its own PID namespace hides the host's
// processes, a fresh /proc and /tmp come with it, and it runs as an unprivileged user. Its network is its
// own too (sandbox-network.ts): out to the internet, which providers and remote backends need, but not to
// this host's loopback, where the embedded Temporal listens without authentication. git does not run
// here: it holds the installation token.
import { lstat, readlink, realpath } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { execa } from 'execa';
import type { RunnerSettings } from './operator-policy.ts';
import { privateNetworkAvailable, withPrivateNetwork, type PrivateNetwork } from './sandbox-network.ts';

export type Sandbox =
  | { kind: 'bubblewrap'; bwrap: string; system: string[]; paths: RunnerSettings['paths']; network?: 'private' | 'host' }
  /** The operator's explicit opt-out (`runner.sandbox: none`): commands run as they are. */
  | { kind: 'none' }
  /** `auto` on a host where bubblewrap does not work: repository code is refused. */
  | { kind: 'unavailable'; reason: string };

/** `nobody`: inside the sandbox, repository code is never root. */
export const SANDBOX_UID = 65534;

/** The directories one run may use besides the system's. */
export interface SandboxRun {
  /** The checkout (read-write: terraform writes .terraform.lock.hcl, modules, hooks write files). */
  checkout: string;
  /** Read-only instead (policy checks only read). */
  checkoutReadOnly?: boolean;
  /** The run's own bot dir: TF_DATA_DIR, the plan file, HOME. */
  runDir: string;
  /** The repository's provider cache (absent: not mounted). */
  pluginCache?: string;
  /** Read-only extras (the terraform binary's dir). */
  readOnly?: string[];
}

export interface WrappedCommand {
  file: string;
  args: readonly string[];
  env: Record<string, string>;
  /** With a private network: what runCommand sets up once bubblewrap is spawned (sandbox-network.ts). */
  network?: PrivateNetwork;
}

const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
/** What TLS, DNS and user lookups need from /etc; never all of /etc. */
const SYSTEM_ETC = [
  '/etc/ssl',
  '/etc/ca-certificates',
  '/etc/pki',
  '/etc/alternatives',
  '/etc/resolv.conf',
  '/etc/hosts',
  '/etc/nsswitch.conf',
  '/etc/passwd',
  '/etc/group',
  '/etc/localtime',
];

/** Arguments that mount the host's system dirs read-only; top-level symlinks (/bin → usr/bin) stay symlinks. */
export async function systemMounts(): Promise<string[]> {
  const args: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    const stats = await lstat(dir).catch(() => undefined);
    if (!stats) continue;
    if (stats.isSymbolicLink()) args.push('--symlink', await readlink(dir), dir);
    else args.push('--ro-bind', dir, dir);
  }
  // --ro-bind-try follows a symlinked source (/etc/resolv.conf → /run/…) and skips what does not exist.
  for (const path of SYSTEM_ETC) args.push('--ro-bind-try', path, path);
  return args;
}

/** The bwrap arguments that isolate a command; `binds` come after /tmp so dirs under /tmp stay visible. */
export function bubblewrapArgs(system: readonly string[], binds: ReadonlyArray<{ path: string; writable: boolean; optional?: boolean }>): string[] {
  const args = [
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-user',
    '--uid', String(SANDBOX_UID),
    '--gid', String(SANDBOX_UID),
    '--die-with-parent',
    '--new-session',
    '--proc', '/proc',
    '--dev', '/dev',
    '--tmpfs', '/tmp',
    ...system,
  ];
  for (const { path, writable, optional } of binds) args.push(`${writable ? '--bind' : '--ro-bind'}${optional ? '-try' : ''}`, path, path);
  return args;
}

/**
 * The command as the sandbox runs it. The environment is bwrap's own (given to it exactly, nothing
 * inherited) rather than --setenv arguments: argv is readable by every user of the host, environ is not.
 */
export function wrapCommand(sandbox: Extract<Sandbox, { kind: 'bubblewrap' }>, run: SandboxRun, command: Omit<WrappedCommand, 'network'> & { cwd: string }): WrappedCommand {
  const binds = [
    // The operator's paths first: this run's own dirs are mounted over them if they overlap. One that does
    // not exist (yet) is left out rather than failing every run.
    ...sandbox.paths.map((p) => ({ ...p, optional: true })),
    ...(run.readOnly ?? []).map((path) => ({ path, writable: false })),
    { path: run.checkout, writable: !run.checkoutReadOnly },
    // Read-only: git runs on this work dir later, outside the sandbox and with the installation token, so a
    // planted core.fsmonitor or hooksPath in .git/config would run there.
    { path: join(run.checkout, '.git'), writable: false, optional: true },
    { path: run.runDir, writable: true },
    ...(run.pluginCache ? [{ path: run.pluginCache, writable: true }] : []),
  ];
  const argv = [sandbox.bwrap, ...bubblewrapArgs(sandbox.system, binds), '--chdir', command.cwd, '--', command.file, ...command.args];
  if (sandbox.network === 'host') return { file: argv[0]!, args: argv.slice(1), env: command.env };
  return withPrivateNetwork(argv, command.env);
}

/** Where `binary` is on PATH, symlinks resolved (its dir is mounted read-only); undefined if not found. */
export async function findBinary(binary: string, path = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const real = await realpath(join(dir, binary)).catch(() => undefined);
    if (real && (await lstat(real)).isFile()) return real;
  }
  return undefined;
}

/** The dir to mount for a binary, unless the system mounts already cover it. */
export function binaryMount(binaryPath: string | undefined): string[] {
  if (!binaryPath) return [];
  const dir = dirname(binaryPath);
  return SYSTEM_DIRS.some((d) => dir === d || dir.startsWith(`${d}/`)) ? [] : [dir];
}

export type ProbeResult = { ok: true } | { ok: false; reason: string };

/** Runs `true` in a sandbox made exactly as for terraform: says whether bubblewrap works on this host. */
export async function probeBubblewrap(bwrap = 'bwrap'): Promise<ProbeResult> {
  const system = await systemMounts();
  const r = await execa(bwrap, [...bubblewrapArgs(system, []), '--', 'true'], {
    env: { PATH: '/usr/bin:/bin' },
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 15_000,
    all: true,
  });
  if (r.exitCode === 0) return { ok: true };
  const detail = (r.all || r.shortMessage || '').trim().split('\n')[0]?.slice(0, 200) ?? '';
  return { ok: false, reason: detail || `${bwrap} exited with code ${r.exitCode}` };
}

export class SandboxUnavailableError extends Error {}

/** The sandbox the operator's `runner.sandbox` asks for, given what works on this host. */
export async function resolveSandbox(
  runner: RunnerSettings,
  probe: (bwrap: string) => Promise<ProbeResult> = probeBubblewrap,
  bwrap = 'bwrap',
  networkAvailable: () => boolean = privateNetworkAvailable,
): Promise<Sandbox> {
  if (runner.sandbox === 'none') return { kind: 'none' };
  const result = await probe(bwrap);
  const network = runner.network ?? 'private';
  const reason = !result.ok
    ? result.reason
    : network === 'private' && !networkAvailable()
      ? 'slirp4netns is not installed: repository code runs in a private network (no way to this host\'s loopback, where the embedded Temporal listens), which needs it'
      : undefined;
  if (!reason) return { kind: 'bubblewrap', bwrap, system: await systemMounts(), paths: runner.paths, network };
  if (runner.sandbox === 'bubblewrap') {
    throw new SandboxUnavailableError(`runner.sandbox is "bubblewrap" but bubblewrap does not work on this host: ${reason}`);
  }
  return { kind: 'unavailable', reason };
}

/** What the PR is told when repository code cannot run sandboxed. */
export function sandboxUnavailableMessage(reason: string): string {
  return [
    'Terrapin runs terraform and hooks only inside a sandbox (bubblewrap), and the sandbox does not work on this server:',
    `  ${reason}`,
    'Nothing from this pull request was run. The operator can fix this by installing bubblewrap and slirp4netns (and',
    'allowing user namespaces in the container), or opt out explicitly with `runner.sandbox: none` in TERRAPIN_SERVER_CONFIG.',
  ].join('\n');
}

/** One line for the worker's start log. */
export function describeSandbox(sandbox: Sandbox): { level: 'info' | 'warn'; message: string } {
  switch (sandbox.kind) {
    case 'bubblewrap':
      return sandbox.network === 'host'
        ? { level: 'warn', message: 'terraform and hooks run sandboxed (bubblewrap) on the host network (runner.network: host): they can reach services on this host, so Temporal must require mTLS or an API key' }
        : { level: 'info', message: 'terraform and hooks run sandboxed (bubblewrap) in a private network' };
    case 'none':
      return {
        level: 'warn',
        message: 'runner.sandbox is "none": terraform and hooks run UNSANDBOXED and pull request code can read this server\'s secrets and other repositories\' files',
      };
    case 'unavailable':
      return { level: 'warn', message: `bubblewrap does not work on this host (${sandbox.reason}): every plan and apply is refused until it does (or runner.sandbox is "none")` };
  }
}
