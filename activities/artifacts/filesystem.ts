// Artifacts as files under <TERRAPIN_DATA_DIR>/artifacts/<first two hex digits>/<sha256>: the default, for
// one machine (`npm start`) or workers sharing a disk.
import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeBotFile } from '../checkout-files.ts';
import { checkSha256, sha256Of, verified, type ArtifactStore } from './store.ts';

export function filesystemArtifactStore(dir: string): ArtifactStore {
  const pathOf = (sha256: string) => join(dir, sha256.slice(0, 2), sha256);
  return {
    describe: `filesystem ${dir}`,
    async put(content) {
      const sha256 = sha256Of(content);
      const dest = pathOf(sha256);
      await mkdir(join(dir, sha256.slice(0, 2)), { recursive: true, mode: 0o700 });
      // Written beside, then linked into place: a reader never sees half a file, and an existing artifact
      // (link fails with EEXIST) is left exactly as it was.
      const tmp = `${dest}.${randomUUID()}.tmp`;
      await writeBotFile(tmp, content);
      try {
        await link(tmp, dest);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      } finally {
        await rm(tmp, { force: true });
      }
      return sha256;
    },
    async get(sha256) {
      let content: Buffer;
      try {
        content = await readFile(pathOf(checkSha256(sha256)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      return verified(sha256, content);
    },
    async close() {},
  };
}
