// A run's output as it happens, for `terrapin logs --follow`: every line of the run's terraform commands and
// hooks, scrubbed like the saved log, appended to one file per run under the data dir. The saved log is
// written only when a command ends; this one is written as it runs. A reader on the worker's disk tails it.
import { appendFileSync, existsSync, mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { scrubSecrets } from '../app/logger.ts';

/** Live logs older than this are removed when another run starts one: a run lasts minutes, not a day. */
const KEEP_MS = 24 * 3600_000;
/** How often a worker looks for old live logs (a look reads the whole directory). */
const PRUNE_EVERY_MS = 3600_000;
const prunedAt = new Map<string, number>();


export interface LiveLog {
  /** Some of a command's output; only whole lines are written (a secret is never split across two writes). */
  write(chunk: string): void;
  /** Writes what is left of the last line. */
  end(): void;
}

/**
 * Appends scrubbed lines to `file`. A secret spanning lines is also scrubbed line by line. Never throws:
 * the live log is a courtesy, and the command's own result does not depend on it.
 */
export function openLiveLog(file: string, secrets: readonly string[], header: string): LiveLog {
  const pieces = [...secrets, ...secrets.flatMap((s) => (s.includes('\n') ? s.split('\n').filter((l) => l.trim().length >= 4) : []))];
  let pending = '';
  const append = (text: string) => {
    try {
      appendFileSync(file, scrubSecrets(text, pieces), { mode: 0o600 });
    } catch {
      // A full disk or a removed data dir: the saved log still holds the output.
    }
  };
  try {
    const dir = join(file, '..');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // As a run's first command starts, at most once an hour.
    if (!existsSync(file) && Date.now() - (prunedAt.get(dir) ?? 0) > PRUNE_EVERY_MS) {
      prunedAt.set(dir, Date.now());
      pruneOld(dir);
    }
  } catch {
    // As above.
  }
  append(`$ ${header}\n`);
  return {
    write(chunk) {
      pending += chunk;
      const cut = pending.lastIndexOf('\n');
      if (cut < 0) return;
      append(pending.slice(0, cut + 1));
      pending = pending.slice(cut + 1);
    },
    end() {
      if (pending) append(`${pending}\n`);
      pending = '';
    },
  };
}

function pruneOld(dir: string): void {
  const now = Date.now();
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    try {
      if (now - statSync(path).mtimeMs > KEEP_MS) unlinkSync(path);
    } catch {
      // Gone meanwhile.
    }
  }
}
