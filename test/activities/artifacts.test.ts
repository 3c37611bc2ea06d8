// The artifact store, both backends: content-addressed, written once, verified on every read.
// PostgreSQL: the server at 127.0.0.1:5432 (database `test`), a table of this run's own, dropped after.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactCorrupt, getToFile, sha256Of, type ArtifactStore } from '../../activities/artifacts/index.ts';
import { filesystemArtifactStore } from '../../activities/artifacts/filesystem.ts';
import { postgresArtifactStore } from '../../activities/artifacts/postgres.ts';
import { artifactsFrom, ConfigError } from '../../app/config.ts';

const PG_URL = process.env.TERRAPIN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Backend {
  name: string;
  open(): Promise<{ store: ArtifactStore; tamper(sha256: string, content: Buffer): Promise<void>; count(): Promise<number> }>;
}

const dirs: string[] = [];
const tables: string[] = [];
let admin: pg.Client;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
});
afterAll(async () => {
  for (const t of tables) await admin.query(`drop table if exists ${t}_paths, ${t}`);
  await admin?.end();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const backends: Backend[] = [
  {
    name: 'filesystem',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'terrapin-artifacts-'));
      dirs.push(dir);
      const store = filesystemArtifactStore(dir);
      return {
        store,
        tamper: (sha256, content) => writeFile(join(dir, sha256.slice(0, 2), sha256), content),
        async count() {
          let n = 0;
          for (const sub of await readdir(dir)) n += (await readdir(join(dir, sub))).length;
          return n;
        },
      };
    },
  },
  {
    name: 'postgres',
    async open() {
      const table = `artifacts_test_${randomBytes(6).toString('hex')}`;
      tables.push(table);
      const store = postgresArtifactStore({ url: PG_URL, table });
      return {
        store,
        tamper: async (sha256, content) => void (await admin.query(`update ${table} set content = $2 where sha256 = $1`, [sha256, content])),
        count: async () => Number((await admin.query(`select count(*) as n from ${table}`)).rows[0].n),
      };
    },
  },
];

describe.each(backends)('$name artifact store', (backend) => {
  it('stores bytes under their sha256 and gives the same bytes back', async () => {
    const { store, count } = await backend.open();
    try {
      const content = Buffer.concat([Buffer.from('plan\0'), randomBytes(300_000)]);
      const sha256 = await store.put(content);
      expect(sha256).toBe(sha256Of(content));
      expect((await store.get(sha256))!.equals(content)).toBe(true);
      expect(await count()).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('writes once: a second put of the same content is a no-op, concurrent ones too', async () => {
    const { store, count } = await backend.open();
    try {
      const content = Buffer.from('the same plan');
      const names = await Promise.all([store.put(content), store.put(content), store.put(content)]);
      expect(new Set(names)).toEqual(new Set([sha256Of(content)]));
      await store.put(Buffer.from('another plan'));
      expect(await count()).toBe(2);
    } finally {
      await store.close();
    }
  });

  it('answers undefined for an unknown hash and refuses a name that is not a sha256', async () => {
    const { store } = await backend.open();
    try {
      expect(await store.get(sha256Of(Buffer.from('never stored')))).toBeUndefined();
      await expect(store.get('../../etc/passwd')).rejects.toThrow(/not a sha256/);
    } finally {
      await store.close();
    }
  });

  it('refuses tampered content on read, and a second put does not overwrite it', async () => {
    const { store, tamper } = await backend.open();
    try {
      const content = Buffer.from('approved plan');
      const sha256 = await store.put(content);
      await tamper(sha256, Buffer.from('evil plan'));
      await expect(store.get(sha256)).rejects.toBeInstanceOf(ArtifactCorrupt);
      const file = join(await mkdtemp(join(tmpdir(), 'terrapin-artifact-out-')), 'plan.tfplan');
      dirs.push(join(file, '..'));
      await expect(getToFile(store, sha256, file)).rejects.toBeInstanceOf(ArtifactCorrupt);
      await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await store.close();
    }
  });

  it('finds a bot file by the path it was stored at, the latest recorded bytes, verified', async () => {
    const { store, tamper } = await backend.open();
    try {
      const path = '/data/work/acme/infra/pr-1/abc/plan.txt';
      const first = await store.put(Buffer.from('plan text v1'));
      const second = await store.put(Buffer.from('plan text v2'));
      expect(await store.fetchByPath(path)).toBeUndefined();
      await store.alias(path, first);
      expect((await store.fetchByPath(path))!.toString()).toBe('plan text v1');
      await store.alias(path, second);
      expect((await store.fetchByPath(path))!.toString()).toBe('plan text v2');
      expect(await store.fetchByPath('/data/work/acme/infra/pr-1/abc/other.txt')).toBeUndefined();
      await expect(store.alias(path, '../../etc/passwd')).rejects.toThrow('not a sha256');
      await tamper(second, Buffer.from('plan text v3'));
      await expect(store.fetchByPath(path)).rejects.toBeInstanceOf(ArtifactCorrupt);
    } finally {
      await store.close();
    }
  });

  it('writes a fetched artifact to a file only the worker can read', async () => {
    const { store } = await backend.open();
    try {
      const sha256 = await store.put(Buffer.from('plan bytes'));
      const dir = await mkdtemp(join(tmpdir(), 'terrapin-artifact-out-'));
      dirs.push(dir);
      expect(await getToFile(store, sha256, join(dir, 'plan.tfplan'))).toBe(true);
      expect(await readFile(join(dir, 'plan.tfplan'), 'utf8')).toBe('plan bytes');
      expect((await stat(join(dir, 'plan.tfplan'))).mode & 0o777).toBe(0o600);
      expect(await getToFile(store, sha256Of(Buffer.from('absent')), join(dir, 'absent'))).toBe(false);
    } finally {
      await store.close();
    }
  });
});

describe('TERRAPIN_ARTIFACTS_URL', () => {
  it('is the filesystem when unset, PostgreSQL for a postgres URL, and refused otherwise', () => {
    expect(artifactsFrom({})).toEqual({ kind: 'filesystem' });
    expect(artifactsFrom({ TERRAPIN_ARTIFACTS_URL: 'postgres://u@db:5432/terrapin' })).toEqual({ kind: 'postgres', url: 'postgres://u@db:5432/terrapin' });
    expect(artifactsFrom({ TERRAPIN_ARTIFACTS_URL: 'postgresql://db/terrapin' })).toMatchObject({ kind: 'postgres' });
    expect(() => artifactsFrom({ TERRAPIN_ARTIFACTS_URL: 'mysql://db/terrapin' })).toThrow(ConfigError);
  });
});
