// Runs a command for an activity: minimal environment, combined output, heartbeats and cancellation.
// Commands never inherit the worker's environment, so the app's own secrets cannot reach terraform,
// providers or git hooks.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { readFile } from 'node:fs/promises';
import { availableParallelism, constants as osConstants, homedir } from 'node:os';
import { execa } from 'execa';
import { asyncLocalStorage, CancelledFailure } from '@temporalio/activity';
import { scrubSecrets } from '../app/logger.ts';
import { NetworkSetupError, type PrivateNetwork } from './sandbox-network.ts';
import { openLiveLog, type LiveLog } from './live-log.ts';
import { timeTerraform } from '../app/metrics.ts';

export interface RunOptions {
  cwd: string;
  /** Added to the minimal environment (PATH, HOME). */
  env?: Record<string, string>;
  /** Extra values to redact from the output (e.g. the installation token). */
  secrets?: readonly string[];
  /** Kill the command after this long; reported as exit code 124. */
  timeoutMs?: number;
  heartbeatEveryMs?: number;
  /** Time between SIGTERM and SIGKILL on cancellation. Terraform needs a while to release its lock. */
  killGraceMs?: number;
  /**
   * Runs the command through a wrapper (the sandbox, see sandbox.ts), given the full environment the
   * command gets. Cancellation then sends SIGTERM to the wrapped command itself, not to the wrapper,
   * which would take the command down at once without its grace period.
   */
  wrap?: (command: { file: string; args: readonly string[]; env: Record<string, string>; cwd: string }) => WrappedCommand;
  /**
   * Writes stdout and stderr (interleaved) to this file instead of pipes, read back when the command ends;
   * the result's stdout is then the same combined text. A command whose worker dies keeps running to its
   * end: written to a pipe with no reader, Go programs such as terraform die of SIGPIPE at their next line,
   * an apply half-way through its resources, before it saved its state. The file holds the output
   * unscrubbed: keep it in the bot's own directories, and remove it once read.
   */
  outputFile?: string;
  /** Also appends the output, scrubbed, line by line as it comes, to this run's live log (live-log.ts). */
  liveLog?: string;
}

/** What a wrapper runs instead; with `network`, the wrapper is bubblewrap waiting for its private network (sandbox-network.ts). */
export interface WrappedCommand {
  file: string;
  args: readonly string[];
  env: Record<string, string>;
  network?: PrivateNetwork;
}

export interface RunResult {
  exitCode: number;
  /** stdout and stderr interleaved, secrets scrubbed. */
  output: string;
  /** stdout alone, secrets scrubbed (for machine-readable output such as `show -json`). */
  stdout: string;
}

const EXIT_NOT_FOUND = 127;
const EXIT_TIMEOUT = 124;

export function minimalEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? homedir(),
    ...extra,
  };
}

/** The current activity context, or undefined outside an activity (unit tests, scripts). */
function currentActivity() {
  return asyncLocalStorage.getStore();
}

/** The workflow whose activity this is (a project run's id is its run id), or undefined outside an activity. */
export function activityWorkflow(): { id: string; type: string } | undefined {
  const info = currentActivity()?.info;
  return info?.workflowExecution && info.workflowType ? { id: info.workflowExecution.workflowId, type: info.workflowType } : undefined;
}

/** Heartbeats when called inside an activity; a no-op elsewhere. */
export function heartbeatIfActivity(details?: unknown): void {
  currentActivity()?.heartbeat(details);
}

/**
 * The sandbox could not set itself up, so the command never started: bubblewrap's loopback setup in a new
 * network namespace, or slirp4netns, now and then loses a race when many sandboxes start at once.
 */
const SANDBOX_SETUP_FAILED = /^(bwrap: loopback: [^\n]*|terrapin: could not give the sandbox its network[^\n]*)\n?$/;
const SANDBOX_SETUP_ATTEMPTS = 3;

/**
 * How many sandboxed commands (terraform, hooks) run at once in this worker; the others wait for a slot,
 * heartbeating. Without a cap, a worker's 100 activity slots could start 100 terraform processes together:
 * on 2 cores, 100 PRs opened at once ran the load average past 10, starved the worker and Temporal, and
 * plans timed out on their heartbeats. Terraform is CPU-bound and multi-threaded, so a few per core keep
 * the CPUs busy. TERRAPIN_COMMAND_CONCURRENCY overrides it (e.g. where commands mostly wait on a cloud API).
 * Git (unsandboxed, short, mostly I/O) has a cap of its own, twice as high, so that an `/approve`'s
 * checks never queue behind other PRs' terraform.
 */
export function commandConcurrency(env: Record<string, string | undefined> = process.env): number {
  const value = Number(env.TERRAPIN_COMMAND_CONCURRENCY);
  return Number.isInteger(value) && value > 0 ? value : Math.max(4, 2 * availableParallelism());
}

/** A counting semaphore: `acquire` resolves with the release, in arrival order. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.free > 0) this.free--;
    else {
      await new Promise<void>((resolve, reject) => {
        const turn = () => {
          signal?.removeEventListener('abort', abort);
          resolve();
        };
        const abort = () => {
          this.waiting.splice(this.waiting.indexOf(turn), 1);
          reject(signal!.reason instanceof Error ? signal!.reason : new CancelledFailure('Activity cancelled'));
        };
        if (signal?.aborted) return abort();
        signal?.addEventListener('abort', abort, { once: true });
        this.waiting.push(turn);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next(); // the slot passes straight on
      else this.free++;
    };
  }
}

const slots: { sandboxed?: Slots; other?: Slots } = {};

/** Never throws for a failing command; throws only when the activity is cancelled. */
export function runCommand(file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return timeTerraform(file, args, () => runRetryingSetup(file, args, opts));
}

async function runRetryingSetup(file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  for (let attempt = 1; ; attempt++) {
    const { setupFailed: networkFailed, ...result } = await runOnce(file, args, opts);
    // Safe to run again: nothing of the command ran. (Only the sandbox's own one-line message counts: a
    // command that printed exactly that and failed can only be a repository's hook, run once more.)
    const setupFailed = networkFailed || ((result.exitCode === 1 || result.exitCode === 125) && SANDBOX_SETUP_FAILED.test(result.output.trim()));
    if (!opts.wrap || attempt >= SANDBOX_SETUP_ATTEMPTS || !setupFailed) return result;
  }
}

async function runOnce(file: string, args: readonly string[], opts: RunOptions): Promise<RunResult & { setupFailed?: boolean }> {
  const activity = currentActivity();
  // A local activity (a run's checkout) cannot heartbeat: the worker itself keeps it alive.
  const beating = activity?.info.isLocal ? undefined : activity;
  const started = Date.now();
  const beat = () => beating?.heartbeat({ command: file, elapsedMs: Date.now() - started });
  beat();
  const timer = beating ? setInterval(beat, opts.heartbeatEveryMs ?? 5_000) : undefined;
  let release: () => void;
  try {
    const pool = opts.wrap ? (slots.sandboxed ??= new Slots(commandConcurrency())) : (slots.other ??= new Slots(2 * commandConcurrency()));
    release = await pool.acquire(activity?.cancellationSignal);
  } catch (err) {
    if (timer) clearInterval(timer);
    throw err;
  }

  // Cancellation and timeout share one path: SIGTERM to the command, then SIGKILL to its whole process
  // group, because children that outlive it (providers, provisioner shells) would hold the output pipes open.
  const timeout = opts.timeoutMs ? AbortSignal.timeout(opts.timeoutMs) : undefined;
  const signals = [activity?.cancellationSignal, timeout].filter((s): s is AbortSignal => s !== undefined);
  const cancelSignal = signals.length > 0 ? AbortSignal.any(signals) : undefined;
  const graceMs = opts.killGraceMs ?? 10_000;
  let groupKill: NodeJS.Timeout | undefined;
  let network: PrivateNetwork | undefined;
  let outputFd: number | undefined;
  let live: LiveLog | undefined;
  let tail: { stop(): void } | undefined;

  try {
    live = opts.liveLog ? openLiveLog(opts.liveLog, opts.secrets ?? [], [file, ...args].join(' ')) : undefined;
    const command: WrappedCommand = opts.wrap ? opts.wrap({ file, args, env: minimalEnv(opts.env), cwd: opts.cwd }) : { file, args, env: minimalEnv(opts.env) };
    network = command.network;
    // Opened (truncated) before the command starts: its presence alone says the command was started.
    outputFd = opts.outputFile ? openSync(opts.outputFile, 'w', 0o600) : undefined;
    // execa's types name only fds 3–9 for stdout and stderr; at run time any open fd is handed to spawn as is.
    const toFile = outputFd as 3 | undefined;
    const subprocess = execa(command.file, command.args, {
      cwd: opts.cwd,
      env: command.env,
      extendEnv: false,
      all: outputFd === undefined,
      reject: false,
      // A sandbox with a network of its own talks to its set-up (sandbox-network.ts) through more pipes.
      ...(network ? sandboxPipes(network.extraPipes, toFile) : toFile === undefined ? { stdin: 'ignore' as const } : { stdin: 'ignore' as const, stdout: toFile, stderr: toFile }),
      detached: true,
      ...(opts.wrap ? {} : { cancelSignal, forceKillAfterDelay: graceMs }),
    });
    if (live) {
      if (opts.outputFile) tail = tailFile(opts.outputFile, live);
      else subprocess.all?.on('data', (chunk: Buffer) => live!.write(chunk.toString()));
    }
    cancelSignal?.addEventListener(
      'abort',
      () => {
        if (opts.wrap) {
          void wrappedCommandPid(subprocess.pid).then((pid) => signal(pid ?? subprocess.pid, 'SIGTERM'));
          groupKill = setTimeout(() => {
            // The wrapper's death tears down its PID namespace: everything inside goes with it.
            signal(subprocess.pid, 'SIGKILL');
            killProcessGroup(subprocess.pid);
          }, graceMs);
        } else {
          groupKill = setTimeout(() => killProcessGroup(subprocess.pid), graceMs + 100);
        }
      },
      { once: true },
    );
    let setupError: NetworkSetupError | undefined;
    if (network) {
      try {
        await network.connect(subprocess);
      } catch (err) {
        if (!(err instanceof NetworkSetupError)) throw err;
        setupError = err;
        // Still waiting for the go-ahead, or already gone: the command never ran.
        killProcessGroup(subprocess.pid);
      }
    }
    // The child has its own copy; this process's would keep the file open for nothing.
    if (outputFd !== undefined) closeSync(outputFd);
    outputFd = undefined;
    const finished = await subprocess;
    tail?.stop();
    tail = undefined;
    // Without its final newline, as execa gives piped output.
    const written = opts.outputFile ? (await readFile(opts.outputFile, 'utf8').catch(() => '')).replace(/\r?\n$/, '') : undefined;
    const result = written === undefined ? finished : { ...finished, all: written, stdout: written };
    const scrub = (s: string | undefined) => scrubSecrets(s ?? '', opts.secrets);

    if (activity?.cancellationSignal.aborted) {
      const reason: unknown = activity.cancellationSignal.reason;
      throw reason instanceof Error ? reason : new CancelledFailure('Activity cancelled');
    }
    if (setupError) {
      const before = scrub(result.all);
      return { exitCode: 125, output: `${before}${before && !before.endsWith('\n') ? '\n' : ''}${setupError.message}`, stdout: '', setupFailed: true };
    }
    let exitCode = result.exitCode;
    let output = scrub(result.all);
    if (timeout?.aborted) {
      exitCode = EXIT_TIMEOUT;
      output += `\n${file} timed out after ${opts.timeoutMs} ms`;
    } else if (exitCode === undefined && result.signal) {
      exitCode = 128 + (osConstants.signals[result.signal] ?? 0);
    } else if (opts.wrap && exitCode === 1 && /^bwrap: execvp [^\n]*: No such file or directory\s*$/.test(output)) {
      // The wrapper could not find the command: the same answer as without it.
      exitCode = EXIT_NOT_FOUND;
      output = `${file}: command not found (ENOENT)`;
    } else if (exitCode === undefined) {
      // Could not start (ENOENT, EACCES, bad cwd): the shell convention for "command not found".
      exitCode = EXIT_NOT_FOUND;
      output = scrub(result.shortMessage);
    }
    return { exitCode, output, stdout: scrub(result.stdout) };
  } finally {
    tail?.stop();
    live?.end();
    if (outputFd !== undefined) closeSync(outputFd);
    release();
    if (timer) clearInterval(timer);
    if (groupKill) clearTimeout(groupKill);
    network?.close();
  }
}

/** stdin ignored, stdout and stderr captured (or written to `output`), then `extra` pipes (fds 3…) that runCommand does not read. */
function sandboxPipes(extra: number, output?: 3) {
  const fds = Array.from({ length: extra }, (_, i) => i + 3);
  const out = output ?? ('pipe' as const);
  return {
    stdio: ['ignore', out, out, ...fds.map(() => 'pipe' as const)] as const,
    buffer: Object.fromEntries(fds.map((fd) => [`fd${fd}`, false])) as Record<`fd${number}`, boolean>,
  };
}

/** Follows a command's output file into the live log every 250 ms; `stop` takes in the rest, once. */
function tailFile(path: string, live: LiveLog): { stop(): void } {
  const decoder = new StringDecoder('utf8');
  let offset = 0;
  const readNew = () => {
    try {
      const fd = openSync(path, 'r');
      try {
        const size = fstatSync(fd).size;
        if (size <= offset) return;
        const buf = Buffer.alloc(size - offset);
        const read = readSync(fd, buf, 0, buf.length, offset);
        offset += read;
        live.write(decoder.write(buf.subarray(0, read)));
      } finally {
        closeSync(fd);
      }
    } catch {
      // Not there yet, or gone: the saved log has it all.
    }
  };
  const timer = setInterval(readNew, 250);
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      readNew();
      live.write(decoder.end());
    },
  };
}

function signal(pid: number | undefined, name: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** The first process below `pid` that is not the wrapper itself (bwrap forks once more as the namespace's init). */
async function wrappedCommandPid(pid: number | undefined): Promise<number | undefined> {
  let current = pid;
  for (let depth = 0; current && depth < 4; depth++) {
    const comm = (await readFile(`/proc/${current}/comm`, 'utf8').catch(() => '')).trim();
    if (depth > 0 && comm !== 'bwrap') return current;
    const children = await readFile(`/proc/${current}/task/${current}/children`, 'utf8').catch(() => '');
    current = Number(children.trim().split(/\s+/)[0]) || undefined;
  }
  return undefined;
}

function killProcessGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
