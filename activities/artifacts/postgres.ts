// Artifacts in PostgreSQL (TERRAPIN_ARTIFACTS_URL=postgres://…): workers on different machines share plans
// without a shared disk. One table, created if missing; a row is inserted once and never updated. A second
// table, <table>_paths, maps the path a bot file was written at to its sha256 (readBotFile on another worker).
import pg from 'pg';
import { removeBotFileSource } from '../checkout-files.ts';
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
  if (!IDENTIFIER.test(table) || table.length > 57) throw new Error(`invalid artifacts table name: ${table}`);
  const paths = `${table}_paths`;
  const pool = new pg.Pool({ connectionString: url, max: maxConnections });
  // An idle client's error (the server restarted) would otherwise crash the worker; the next query reconnects.
  pool.on('error', () => undefined);
  let ready: Promise<unknown> | undefined;
  // Two workers creating a table at once: the loser sees a unique violation on the type; the table exists.
  const create = (sql: string) =>
    pool.query(sql).catch((err: unknown) => {
      if ((err as { code?: string }).code !== '23505') throw err;
    });
  const ensureTable = () =>
    (ready ??= create(`create table if not exists ${table} (sha256 char(64) primary key, content bytea not null, size bigint not null, created_at timestamptz not null default now())`)
      .then(() => create(`create table if not exists ${paths} (path text primary key, sha256 char(64) not null, recorded_at timestamptz not null default now())`))
      .catch((err: unknown) => {
        ready = undefined;
        throw err;
      }));
  const where = describeUrl(url);
  const get = async (sha256: string) => {
    checkSha256(sha256);
    await ensureTable();
    const { rows } = await pool.query<{ content: Buffer }>(`select content from ${table} where sha256 = $1`, [sha256]);
    return rows[0] ? verified(sha256, rows[0].content) : undefined;
  };
  const store: ArtifactStore = {
    describe: `postgres ${where} table ${table}`,
    async put(content) {
      const sha256 = sha256Of(content);
      await ensureTable();
      await pool.query(`insert into ${table} (sha256, content, size) values ($1, $2, $3) on conflict (sha256) do nothing`, [sha256, content, content.length]);
      return sha256;
    },
    get,
    async alias(path, sha256) {
      checkSha256(sha256);
      await ensureTable();
      await pool.query(
        `insert into ${paths} (path, sha256) values ($1, $2) on conflict (path) do update set sha256 = excluded.sha256, recorded_at = now()`,
        [path, sha256],
      );
    },
    async fetchByPath(path) {
      await ensureTable();
      const { rows } = await pool.query<{ sha256: string }>(`select sha256 from ${paths} where path = $1`, [path]);
      return rows[0] ? get(rows[0].sha256) : undefined;
    },
    async close() {
      removeBotFileSource(store);
      await pool.end();
    },
  };
  return store;
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
