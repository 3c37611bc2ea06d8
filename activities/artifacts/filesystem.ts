// Artifacts as files under <TERRAPIN_DATA_DIR>/artifacts/<first two hex digits>/<sha256>: the default, for
// one machine (`npm start`) or workers sharing a disk. Path aliases: <dir>/paths/<sha256 of the path>, holding
// the artifact's sha256.
import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { removeBotFileSource, writeBotFile } from '../checkout-files.ts';
import { checkSha256, sha256Of, verified, type ArtifactStore } from './store.ts';

export function filesystemArtifactStore(dir: string): ArtifactStore {
  const pathOf = (sha256: string) => join(dir, sha256.slice(0, 2), sha256);
  const aliasOf = (path: string) => join(dir, 'paths', sha256Of(Buffer.from(path)));
  const get = async (sha256: string) => {
    let content: Buffer;
    try {
      content = await readFile(pathOf(checkSha256(sha256)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return verified(sha256, content);
  };
  const store: ArtifactStore = {
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
    get,
    async alias(path, sha256) {
      checkSha256(sha256);
      await mkdir(join(dir, 'paths'), { recursive: true, mode: 0o700 });
      // Renamed into place: a reader sees the old alias or the new one, never a partial one.
      const tmp = `${aliasOf(path)}.${randomUUID()}.tmp`;
      await writeBotFile(tmp, sha256);
      await rename(tmp, aliasOf(path));
    },
    async fetchByPath(path) {
      const sha256 = await readFile(aliasOf(path), 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      return sha256 === undefined ? undefined : get(sha256.trim());
    },
    async close() {
      removeBotFileSource(store);
    },
  };
  return store;
}
