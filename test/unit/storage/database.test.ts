import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openDatabase, redactUrl } from '../../../src/storage/database.js';
import { migrations } from '../../../src/storage/migrations/index.js';
import { StorageError } from '../../../src/storage/storage-error.js';
import { storageBackends } from '../../helpers/databases.js';

async function tableNames(db: Awaited<ReturnType<typeof openDatabase>>['db']): Promise<string[]> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  return tables.map((table) => table.name).sort();
}

for (const backend of storageBackends()) {
  describe(backend.name, () => {
    test('migrations create the tables on a fresh database', async () => {
      const database = await backend.open();
      try {
        assert.equal(database.kind, backend.name);
        const names = await tableNames(database.db);
        for (const table of ['app_keys', 'usage_records', 'usage_hourly', 'usage_daily', 'owned_objects', 'conversations', 'conversation_turns', 'kysely_migration', 'kysely_migration_lock']) {
          assert.ok(names.includes(table), `${table} missing from ${names.join(', ')}`);
        }
        const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(database.db);
        // Every migration there is, in order (the list grows with each one).
        assert.deepEqual(applied.rows.map((row) => row.name), Object.keys(migrations).sort());
        assert.deepEqual(applied.rows.map((row) => row.name).slice(0, 5), ['0001_initial', '0002_confinement', '0003_background_usage', '0004_usage_rollup', '0005_conversations']);
        await database.ping();
      } finally {
        await database.cleanup();
      }
    });

    test('reopening an migrated database applies nothing and keeps the data', async () => {
      const first = await backend.open();
      try {
        await first.db
          .insertInto('app_keys')
          .values({
            id: 'key_1',
            name: 'kept',
            key_hash: 'a'.repeat(64),
            key_prefix: 'oa-kept0000',
            source: 'cli',
            created_at: new Date().toISOString(),
            updated_at: new Date().toISOString(),
          })
          .execute();
        await first.close();
        const again = await openDatabase(first.url);
        try {
          const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(again.db);
          assert.equal(applied.rows.length, Object.keys(migrations).length);
          const rows = await again.db.selectFrom('app_keys').select('name').execute();
          assert.deepEqual(rows, [{ name: 'kept' }]);
        } finally {
          await again.close();
        }
      } finally {
        await first.cleanup();
      }
    });

    test('two fresh databases opened side by side each get their own tables', async () => {
      const [a, b] = await Promise.all([backend.open(), backend.open()]);
      try {
        for (const database of [a, b]) {
          const count = await database.db.selectFrom('app_keys').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
          assert.equal(Number(count.n), 0);
        }
      } finally {
        await Promise.all([a.cleanup(), b.cleanup()]);
      }
    });

    test('close is idempotent and ping afterwards reports unavailable', async () => {
      const database = await backend.open();
      await database.close();
      await database.close();
      await assert.rejects(database.ping(), (error: unknown) => error instanceof StorageError && error.code === 'unavailable');
      await database.cleanup();
    });
  });
}

describe('sqlite specifics', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'openai-api-open-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a relative sqlite: URL creates missing parent directories and enables WAL, busy_timeout, foreign_keys', async () => {
    const file = join(dir, 'nested', 'deeper', 'gateway.sqlite');
    const database = await openDatabase(`sqlite:${relative(process.cwd(), file)}`);
    try {
      assert.equal(database.kind, 'sqlite');
      assert.ok((await stat(file)).isFile());
      const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(database.db);
      assert.equal(mode.rows[0]?.journal_mode, 'wal');
      const busy = await sql<{ timeout: number }>`pragma busy_timeout`.execute(database.db);
      assert.ok((busy.rows[0]?.timeout ?? 0) >= 1000);
      const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(database.db);
      assert.equal(fk.rows[0]?.foreign_keys, 1);
    } finally {
      await database.close();
    }
  });

  test('a bare path ending in .db and sqlite::memory: both open migrated databases', async () => {
    for (const url of [join(dir, 'bare.db'), 'sqlite::memory:']) {
      const database = await openDatabase(url);
      try {
        assert.ok((await tableNames(database.db)).includes('app_keys'), url);
      } finally {
        await database.close();
      }
    }
  });

  test('a path below a regular file fails with open_failed', async () => {
    const file = join(dir, 'not-a-directory');
    await writeFile(file, 'x');
    await assert.rejects(openDatabase(`sqlite:${join(file, 'sub', 'gateway.sqlite')}`), (error: unknown) => {
      assert.ok(error instanceof StorageError);
      assert.equal(error.code, 'open_failed');
      assert.match(error.message, /not-a-directory/);
      return true;
    });
  });
});

describe('openDatabase errors', { concurrency: true }, () => {
  test('a PostgreSQL server that never answers fails with open_failed within the connect timeout', async () => {
    // Accepts TCP connections and stays silent, like a server behind a blackholing firewall.
    const sockets = new Set<Socket>();
    const server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const started = performance.now();
      await assert.rejects(openDatabase(`postgres://gateway:s3cret-Pa55@127.0.0.1:${port}/gateway`), (error: unknown) => {
        assert.ok(error instanceof StorageError);
        assert.equal(error.code, 'open_failed');
        assert.ok(!error.message.includes('s3cret-Pa55'), error.message);
        assert.match(error.message, /timeout/i);
        return true;
      });
      const elapsed = performance.now() - started;
      assert.ok(elapsed > 4_000 && elapsed < 8_000, `took ${Math.round(elapsed)} ms`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('an unreachable PostgreSQL fails fast with open_failed and no password', async () => {
    const started = performance.now();
    await assert.rejects(openDatabase('postgres://gateway:s3cret-Pa55@127.0.0.1:1/gateway'), (error: unknown) => {
      assert.ok(error instanceof StorageError);
      assert.equal(error.code, 'open_failed');
      assert.ok(!error.message.includes('s3cret-Pa55'), error.message);
      assert.match(error.message, /postgres:\/\/gateway:\*\*\*@127\.0\.0\.1:1\/gateway/);
      assert.match(error.message, /ECONNREFUSED/);
      return true;
    });
    assert.ok(performance.now() - started < 6_000, 'should not wait past the connect timeout');
  });

  test('an unsupported URL fails with open_failed and no password', async () => {
    await assert.rejects(openDatabase('mysql://root:hunter2@db/gateway'), (error: unknown) => {
      assert.ok(error instanceof StorageError);
      assert.equal(error.code, 'open_failed');
      assert.ok(!error.message.includes('hunter2'), error.message);
      return true;
    });
    await assert.rejects(openDatabase('sqlite://ambiguous.sqlite'), { code: 'open_failed' });
    await assert.rejects(openDatabase('sqlite:'), { code: 'open_failed' });
  });

  test('redactUrl hides only the password, even an unencoded one', () => {
    assert.equal(redactUrl('postgres://u:p@h:5432/d?sslmode=require'), 'postgres://u:***@h:5432/d?sslmode=require');
    assert.equal(redactUrl('postgresql://u:p/@x@h/d'), 'postgresql://u:***@h/d');
    assert.equal(redactUrl('postgres://u@h/d'), 'postgres://u@h/d');
    assert.equal(redactUrl('postgres://h/d'), 'postgres://h/d');
  });
});
