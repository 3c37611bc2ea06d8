// Which artifact store a process uses: PostgreSQL when TERRAPIN_ARTIFACTS_URL names one, else files under
// the data dir. See README "Production: the artifact store".
import { join } from 'node:path';
import { filesystemArtifactStore } from './filesystem.ts';
import { postgresArtifactStore } from './postgres.ts';
import type { ArtifactStore } from './store.ts';

export type { ArtifactStore } from './store.ts';
export { ArtifactCorrupt, getToFile, putBotFile, putFile, sha256Of } from './store.ts';

export type ArtifactSettings = { kind: 'filesystem' } | { kind: 'postgres'; url: string; table?: string };

export function openArtifactStore(settings: ArtifactSettings, dataDir: string): ArtifactStore {
  if (settings.kind === 'postgres') return postgresArtifactStore({ url: settings.url, ...(settings.table ? { table: settings.table } : {}) });
  return filesystemArtifactStore(join(dataDir, 'artifacts'));
}
