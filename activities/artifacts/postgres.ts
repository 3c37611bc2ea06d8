// Artifacts in PostgreSQL (TERRAPIN_ARTIFACTS_URL=postgres://…): workers on different machines share plans
// without a shared disk. One table, created if missing; a row is inserted once and never updated.
import pg from 'pg';
import { checkSha256, sha256Of, verified, type ArtifactStore } from './store.ts';

export const DEFAULT_ARTIFACTS_TABLE = 'terrapin_artifacts';
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export interface PostgresArtifactOptions {
  url: string;
  /** The table (tests use one per run); default terrapin_artifacts. */
  table?: string;
  /** Connections of this worker's pool. */
  maxConnections?: number;
}

export function postgresArtifactStore({ url, table = DEFAULT_ARTIFACTS_TABLE, maxConnections = 4 }: PostgresArtifactOptions): ArtifactStore {
  if (!IDENTIFIER.test(table)) throw new Error(`invalid artifacts table name: ${table}`);
  const pool = new pg.Pool({ connectionString: url, max: maxConnections });
  // An idle client's error (the server restarted) would otherwise crash the worker; the next query reconnects.
  pool.on('error', () => undefined);
  let ready: Promise<unknown> | undefined;
  const ensureTable = () =>
    (ready ??= pool
      .query(`create table if not exists ${table} (sha256 char(64) primary key, content bytea not null, size bigint not null, created_at timestamptz not null default now())`)
      .catch((err: unknown) => {
        ready = undefined;
        // Two workers creating the table at once: the loser sees a unique violation on the type; the table exists.
        if ((err as { code?: string }).code === '23505') return;
        throw err;
      }));
  const where = describeUrl(url);
  return {
    describe: `postgres ${where} table ${table}`,
    async put(content) {
      const sha256 = sha256Of(content);
      await ensureTable();
      await pool.query(`insert into ${table} (sha256, content, size) values ($1, $2, $3) on conflict (sha256) do nothing`, [sha256, content, content.length]);
      return sha256;
    },
    async get(sha256) {
      checkSha256(sha256);
      await ensureTable();
      const { rows } = await pool.query<{ content: Buffer }>(`select content from ${table} where sha256 = $1`, [sha256]);
      return rows[0] ? verified(sha256, rows[0].content) : undefined;
    },
    async close() {
      await pool.end();
    },
  };
}

/** host:port/database, without the password. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return '(unparsable url)';
  }
}
