// The end of a run's log (scrubbed when it was written), for the run's memo: what `terrapin logs` shows on a
// machine that does not share the worker's disk.
import { open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { relative, resolve, isAbsolute } from 'node:path';
import { RUN_LOG_TAIL_BYTES } from '../shared/runs.ts';

export interface LogTail {
  tail: string;
  /** The file is longer than the tail. */
  truncated: boolean;
}

export function createLogTailActivities({ dataDir }: { dataDir: string }) {
  return {
    /** The last RUN_LOG_TAIL_BYTES of a bot file under the data dir, cut at a line start; empty when the file is gone. */
    async readLogTail({ file }: { file: string }): Promise<LogTail> {
      const rel = relative(resolve(dataDir), resolve(file));
      if (rel.startsWith('..') || isAbsolute(rel)) return { tail: '', truncated: false };
      let handle;
      try {
        handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch {
        return { tail: '', truncated: false };
      }
      try {
        const { size } = await handle.stat();
        const start = Math.max(0, size - RUN_LOG_TAIL_BYTES);
        const buffer = Buffer.alloc(size - start);
        await handle.read(buffer, 0, buffer.length, start);
        let text = buffer.toString('utf8');
        // Cut at the first whole line (and never inside a multi-byte character).
        if (start > 0) text = text.slice(text.indexOf('\n') + 1);
        return { tail: text, truncated: start > 0 };
      } finally {
        await handle.close();
      }
    },
  };
}
