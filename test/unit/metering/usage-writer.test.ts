import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { generateKeySecret, hashKeySecret, keyPrefix } from '../../../src/auth/key-secret.js';
import { StorageHealth } from '../../../src/metering/storage-health.js';
import type { UsageEvent } from '../../../src/metering/usage-event.js';
import { UsageWriter } from '../../../src/metering/usage-writer.js';
import { createLogger } from '../../../src/observability/logger.js';
import { KeysRepository } from '../../../src/storage/keys-repository.js';
import { UsageRepository } from '../../../src/storage/usage-repository.js';
import { storageBackends } from '../../helpers/databases.js';
import type { TestDatabase } from '../../helpers/databases.js';

function event(requestId: string, keyId: string | undefined, time: Date): UsageEvent {
  return {
    requestId, time, keyId, caller: keyId ?? 'anonymous', route: '/v1/chat/completions', model: 'gpt-4o-mini', upstream: 'primary', status: 200,
    usage: { promptTokens: 10, completionTokens: 5, totalTokens: 15, cachedTokens: 0, reasoningTokens: 0 }, costUsd: 0.0001, usageSource: 'upstream',
    latencyMs: 12.5, ttfbMs: 3, aborted: false, errorCode: undefined,
  };
}

for (const backend of storageBackends()) {
  describe(`usage writer on ${backend.name}`, () => {
    let database: TestDatabase;
    let keys: KeysRepository;
    let keyId: string;
    /** A writer of its own per test, so no test sees another's queue or health. */
    const newWriter = (): { writer: UsageWriter; health: StorageHealth } => {
      const health = new StorageHealth();
      const writer = new UsageWriter(new UsageRepository(database), keys, health, { flushIntervalMs: 60_000, logger: createLogger('silent'), ping: () => database.ping() });
      return { writer, health };
    };
    const rows = async (prefix: string) => database.db.selectFrom('usage_records').select(['request_id', 'key_id', 'total_tokens']).where('request_id', 'like', `${prefix}%`).orderBy('id').execute();

    before(async () => {
      database = await backend.open();
      keys = new KeysRepository(database);
      const secret = generateKeySecret();
      keyId = (await keys.create({ name: 'writer-test', keyHash: hashKeySecret(secret), keyPrefix: keyPrefix(secret), source: 'cli' })).id;
    });
    after(async () => {
      await database.cleanup();
    });

    test('a flush writes each recorded request once, in order, and moves the key’s last use forward', async () => {
      const { writer } = newWriter();
      const at = new Date('2031-01-02T03:04:05.678Z');
      for (let i = 0; i < 1000; i++) writer.record(event(`once_${i}`, i % 2 === 0 ? keyId : undefined, new Date(at.getTime() + i)));
      await writer.close();
      assert.equal(writer.pending, 0);
      const stored = await rows('once_');
      assert.deepEqual(stored.map((row) => row.request_id), Array.from({ length: 1000 }, (_, i) => `once_${i}`));
      assert.ok(stored.every((row, i) => row.key_id === (i % 2 === 0 ? keyId : null) && Number(row.total_tokens) === 15));
      assert.deepEqual((await keys.getById(keyId))?.lastUsedAt, new Date(at.getTime() + 998));
    });

    test('when only the last-use update fails, the stored batch is not written again', async () => {
      const { writer, health } = newWriter();
      await sql`alter table app_keys rename to app_keys_away`.execute(database.db);
      const at = new Date('2032-01-01T00:00:00.000Z');
      try {
        for (let i = 0; i < 3; i++) writer.record(event(`touch_fails_${i}`, keyId, at));
        await writer.flush();
        assert.equal(health.healthy, false, 'the failed update marks storage down');
        assert.equal(writer.pending, 0, 'the records were stored, so none wait for a retry');
      } finally {
        await sql`alter table app_keys_away rename to app_keys`.execute(database.db);
      }
      await writer.close();
      assert.equal(health.healthy, true);
      assert.equal((await rows('touch_fails_')).length, 3);
      assert.deepEqual((await keys.getById(keyId))?.lastUsedAt, at, 'the last-use time is retried');
    });

    test('a batch that cannot be written is kept, oldest first, and written once storage is back', async () => {
      const { writer, health } = newWriter();
      await sql`alter table usage_records rename to usage_records_away`.execute(database.db);
      try {
        writer.record(event('kept_0', undefined, new Date()));
        await writer.flush();
        writer.record(event('kept_1', undefined, new Date()));
        assert.equal(health.healthy, false);
        assert.equal(writer.pending, 2);
      } finally {
        await sql`alter table usage_records_away rename to usage_records`.execute(database.db);
      }
      await writer.close();
      assert.equal(health.healthy, true);
      assert.deepEqual((await rows('kept_')).map((row) => row.request_id), ['kept_0', 'kept_1']);
    });
  });
}
