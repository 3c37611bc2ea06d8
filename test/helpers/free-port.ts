// Ports for servers a test starts in a child process (Temporal's dev server, app/main.ts), which cannot be
// handed a listening socket. A port found free by listening on port 0 and closing is racy: the kernel hands
// the same ephemeral range to every outgoing connection (gRPC, fetch) of every test file running at once.
// So ports are taken below that range, where nothing gets a port it did not ask for, and reserved across
// the test processes of one machine by a lock file that names its process; a lock whose process is gone is
// taken over. A port stays reserved until this process exits: a test may stop and start a server on it.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOCKS = join(tmpdir(), 'terrapin-test-ports');
const held = new Set<string>();

process.once('exit', () => {
  for (const file of held) {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }
});

/** The lowest port the kernel hands out on its own (the start of ip_local_port_range). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 2048) return low;
  } catch {
    // not Linux: the IANA dynamic range starts at 49152
  }
  return 49152;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reserves `port` for this process, or says it is some other live process's. */
function lock(port: number): boolean {
  const file = join(LOCKS, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      held.add(file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = NaN;
      try {
        owner = Number(readFileSync(file, 'utf8'));
      } catch {
        // removed meanwhile: try again
      }
      if (Number.isInteger(owner) && owner > 0 && alive(owner)) return false;
      try {
        unlinkSync(file);
      } catch {
        // another process took it over first; its `wx` wins and ours fails below
      }
    }
  }
  return false;
}

function unlock(port: number): void {
  const file = join(LOCKS, String(port));
  held.delete(file);
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A port on 127.0.0.1 that no other test process holds and nothing listens on, reserved for this process;
 * `companions` are offsets that must be free and are reserved with it (Temporal's UI at port + 1000).
 */
export async function freePort(opts: { companions?: number[] } = {}): Promise<number> {
  mkdirSync(LOCKS, { recursive: true });
  const offsets = [0, ...(opts.companions ?? [])];
  const top = ephemeralLow() - 1 - Math.max(...offsets);
  const bottom = 10_000;
  for (let tries = 0; tries < 500; tries++) {
    const base = bottom + Math.floor(Math.random() * (top - bottom));
    const ports = offsets.map((o) => base + o);
    const locked: number[] = [];
    let ok = true;
    for (const p of ports) {
      if (!lock(p)) {
        ok = false;
        break;
      }
      locked.push(p);
    }
    if (ok) for (const p of ports) if (!(await canListen(p))) ok = false;
    if (ok) return base;
    for (const p of locked) unlock(p);
  }
  throw new Error(`no free port found below ${top}`);
}
