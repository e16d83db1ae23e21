import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { initial } from '../../../src/storage/migrations/0001-initial.js';
import { backgroundUsage } from '../../../src/storage/migrations/0003-background-usage.js';
import { openDatabase } from '../../../src/storage/database.js';
import { KeysRepository } from '../../../src/storage/keys-repository.js';
import { ObjectsRepository, type OwnedObject } from '../../../src/storage/objects-repository.js';
import { storageBackends, type TestDatabase } from '../../helpers/databases.js';

const object = (id: string, keyId: string, kind = 'file'): OwnedObject => ({ id, kind, keyId, upstream: 'openai', upstreamKey: 'abcdef0123456789', createdAt: new Date('2026-12-01T00:00:00Z') });

for (const backend of storageBackends()) {
  describe(`owned objects on ${backend.name}`, () => {
    let database: TestDatabase;
    let repository: ObjectsRepository;
    before(async () => {
      database = await backend.open();
      repository = new ObjectsRepository(database);
    });
    after(() => database.cleanup());

    test('records owners, finds them one by one and many at once, and keeps the first owner of an id', async () => {
      await repository.insert([object('file-a', 'key_a'), object('resp_a', 'key_a', 'response'), object('file-b', 'key_b')]);
      await repository.insert([object('file-a', 'key_b')]);
      assert.deepEqual(await repository.find('file-a'), object('file-a', 'key_a'));
      assert.equal(await repository.find('file-unknown'), undefined);
      const many = await repository.findMany(['file-a', 'file-b', 'file-unknown']);
      assert.deepEqual(many.map((found) => [found.id, found.keyId]).sort(), [['file-a', 'key_a'], ['file-b', 'key_b']]);
      assert.deepEqual(await repository.findMany([]), []);
      await repository.remove('file-b');
      assert.equal(await repository.find('file-b'), undefined);
    });

    test('keeps a background response pending until exactly one claim, from any connection, records its usage', async () => {
      const pending: OwnedObject = { ...object('resp_bg', 'key_a', 'response'), pendingUsage: { model: 'gpt-4o-mini', recordedAt: undefined } };
      await repository.insert([pending]);
      assert.deepEqual(await repository.find('resp_bg'), pending);
      // A second connection stands for a second gateway instance on the same database.
      const other = await openDatabase(database.url);
      try {
        const elsewhere = new ObjectsRepository(other);
        const at = new Date('2026-12-02T00:00:00Z');
        const claims = await Promise.all([repository, elsewhere, repository, elsewhere, repository, elsewhere].map((claimer) => claimer.claimUsage('resp_bg', at)));
        assert.equal(claims.filter(Boolean).length, 1, 'one claim wins');
        assert.deepEqual((await elsewhere.find('resp_bg'))?.pendingUsage, { model: 'gpt-4o-mini', recordedAt: at });
        assert.equal(await elsewhere.claimUsage('resp_bg', new Date()), false, 'recorded stays recorded');
        assert.equal(await repository.claimUsage('file-a', at), false, 'an object that is not a pending response has nothing to claim');
        assert.equal(await repository.claimUsage('resp_unknown', at), false);
      } finally {
        await other.close();
      }
    });

    test('the background-usage migration can run again over itself (a crash half-way through)', async () => {
      await backgroundUsage.up(database.db as unknown as Kysely<unknown>);
      await repository.insert([{ ...object('resp_again', 'key_a', 'response'), pendingUsage: { model: null, recordedAt: undefined } }]);
      assert.deepEqual((await repository.find('resp_again'))?.pendingUsage, { model: null, recordedAt: undefined });
    });
  });

  test(`${backend.name}: a database from before confinement is upgraded in place, its keys kept without grants`, async () => {
    const legacy = await openLegacy(backend.name);
    try {
      const now = new Date().toISOString();
      await legacy.db.insertInto('app_keys').values({ id: 'key_old', name: 'old', key_hash: 'b'.repeat(64), key_prefix: 'oa-old00000', source: 'cli', created_at: now, updated_at: now, models: '["gpt-4o-mini"]' }).execute();
      await legacy.db.destroy();
      const upgraded = await openDatabase(legacy.url);
      try {
        const key = await new KeysRepository(upgraded).findByHash('b'.repeat(64));
        assert.equal(key?.name, 'old');
        assert.deepEqual(key?.models, ['gpt-4o-mini']);
        assert.equal(key?.endpoints, null);
        await new ObjectsRepository(upgraded).insert([object('file-z', 'key_old')]);
        assert.equal((await new ObjectsRepository(upgraded).find('file-z'))?.keyId, 'key_old');
      } finally {
        await upgraded.close();
      }
    } finally {
      await legacy.cleanup();
    }
  });
}

/** The one table the legacy test writes, as 0001 created it. */
interface LegacySchema {
  app_keys: { id: string; name: string; key_hash: string; key_prefix: string; source: string; created_at: string; updated_at: string; models: string | null };
}

/** A database migrated by the previous release only (0001), as an upgrading owner has it. */
async function openLegacy(kind: 'sqlite' | 'postgres'): Promise<{ db: Kysely<LegacySchema>; url: string; cleanup: () => Promise<void> }> {
  let db: Kysely<LegacySchema>;
  let url: string;
  let cleanup: () => Promise<void>;
  if (kind === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'openai-api-legacy-'));
    url = `sqlite:${join(dir, 'old.sqlite')}`;
    db = new Kysely({ dialect: new SqliteDialect({ database: new BetterSqlite3(join(dir, 'old.sqlite')) }) });
    cleanup = () => rm(dir, { recursive: true, force: true });
  } else {
    const base = process.env['TEST_DATABASE_URL']!;
    const schema = `legacy_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`create schema "${schema}"`);
    await admin.end();
    const withPath = new URL(base);
    withPath.searchParams.set('options', `-c search_path=${schema}`);
    url = withPath.toString();
    db = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) });
    cleanup = async () => {
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      await client.query(`drop schema if exists "${schema}" cascade`);
      await client.end();
    };
  }
  const migrator = new Migrator({ db, provider: { getMigrations: () => Promise.resolve({ '0001_initial': initial }) }, ...(kind === 'postgres' ? { migrationTableSchema: new URL(url).searchParams.get('options')!.split('=')[1]! } : {}) });
  const { error } = await migrator.migrateToLatest();
  if (error) throw error;
  return { db, url, cleanup };
}
