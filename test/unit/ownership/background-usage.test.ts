import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { toAppKey, type AppKey } from '../../../src/auth/app-key.js';
import { generateKeySecret, hashKeySecret, keyPrefix } from '../../../src/auth/key-secret.js';
import { GatewayError } from '../../../src/errors/index.js';
import { LimitTracker } from '../../../src/limits/index.js';
import { PriceTable } from '../../../src/metering/pricing.js';
import { StorageHealth } from '../../../src/metering/storage-health.js';
import { UsageWriter } from '../../../src/metering/usage-writer.js';
import { createLogger } from '../../../src/observability/logger.js';
import { BackgroundUsage } from '../../../src/ownership/background-usage.js';
import { Ownership, type OwnedObject } from '../../../src/ownership/ownership.js';
import { openDatabase, type Database } from '../../../src/storage/database.js';
import { KeysRepository } from '../../../src/storage/keys-repository.js';
import { ObjectsRepository } from '../../../src/storage/objects-repository.js';
import { UsageRepository } from '../../../src/storage/usage-repository.js';
import type { Usage } from '../../../src/streaming/usage.js';
import { storageBackends, type TestDatabase } from '../../helpers/databases.js';

const USAGE: Usage = { promptTokens: 80, completionTokens: 20, totalTokens: 100, cachedTokens: 30, reasoningTokens: 5 };
const logger = createLogger('silent');

/** One gateway instance's share of the work, on its own connection to the shared database. */
interface Instance {
  database: Database;
  ownership: Ownership;
  limits: LimitTracker;
  writer: UsageWriter;
  background: BackgroundUsage;
}

function instance(database: Database, key: AppKey, holdLimit?: number): Instance {
  const usage = new UsageRepository(database);
  const ownership = new Ownership(new ObjectsRepository(database), logger);
  const limits = new LimitTracker({ loadUsage: (keyId, since) => usage.totalsSince(keyId, since) });
  const writer = new UsageWriter(usage, new KeysRepository(database), new StorageHealth(), { flushIntervalMs: 60_000, logger, ping: () => database.ping() });
  const background = new BackgroundUsage({ ownership, meter: writer, limits, keyById: (id) => (id === key.id ? key : undefined), prices: () => new PriceTable(), logger, holdLimit });
  return { database, ownership, limits, writer, background };
}

const pendingResponse = (id: string, keyId: string): OwnedObject => ({ id, kind: 'response', keyId, upstream: 'default', upstreamKey: null, createdAt: new Date(), pendingUsage: { model: 'gpt-4o-mini', recordedAt: undefined } });

for (const backend of storageBackends()) {
  describe(`background response usage on ${backend.name}`, () => {
    let shared: TestDatabase;
    let second: Database;
    let key: AppKey;

    before(async () => {
      shared = await backend.open();
      second = await openDatabase(shared.url);
      const secret = generateKeySecret();
      key = toAppKey(await new KeysRepository(shared).create({ name: 'bg', keyHash: hashKeySecret(secret), keyPrefix: keyPrefix(secret), source: 'cli', budgetTokens: 1000 }));
    });
    after(async () => {
      await second.close();
      await shared.cleanup();
    });

    const settlements = async (id: string) =>
      shared.db.selectFrom('usage_records').selectAll().where('route', '=', `/v1/responses/${id}`).execute();

    test('two instances seeing the response finished record it once; the hold of the one that lost is released', async () => {
      const one = instance(shared, key);
      const two = instance(second, key);
      const object = pendingResponse('resp_shared', key.id);
      await one.ownership.record([object]);
      // The create was admitted on instance one, holding 600 of the 1000-token budget.
      one.background.hold(object.id, await one.limits.admit(key.id, key.name, key.limits, { tokens: 600, costUsd: 0 }));
      assert.equal(one.background.held, 1);
      const seenByTwo = await two.ownership.find(object.id);
      await Promise.all([one.background.settle(object, USAGE, { requestId: 'rq-1', upstream: 'default' }), two.background.settle(seenByTwo!, USAGE, { requestId: 'rq-2', upstream: 'default' }), one.background.settle(object, USAGE, { requestId: 'rq-3', upstream: 'default' })]);
      await Promise.all([one.writer.flush(), two.writer.flush()]);
      const rows = await settlements(object.id);
      assert.equal(rows.length, 1);
      assert.match(rows[0]!.request_id, /^rq-[123]:usage$/);
      assert.equal(rows[0]!.key_id, key.id);
      assert.equal(rows[0]!.key_name, 'bg');
      assert.equal(Number(rows[0]!.total_tokens), 100);
      assert.equal(Number(rows[0]!.cached_tokens), 30);
      assert.equal(Number(rows[0]!.reasoning_tokens), 5);
      assert.ok(Number(rows[0]!.cost_usd) > 0);
      assert.equal(rows[0]!.usage_source, 'upstream');
      assert.equal(one.background.held, 0, 'the hold is settled or released, never left behind');
      // Whichever instance recorded it, instance one no longer holds the 600: 900 fit.
      (await one.limits.admit(key.id, key.name, key.limits, { tokens: 900, costUsd: 0 })).refund();
      assert.equal((await one.ownership.find(object.id))?.pendingUsage?.recordedAt instanceof Date, true, 'remembered as recorded');
      await one.background.settle(object, USAGE, { requestId: 'rq-4', upstream: 'default' });
      await one.writer.flush();
      assert.equal((await settlements(object.id)).length, 1, 'a later sighting records nothing');
      await Promise.all([one.writer.close(), two.writer.close()]);
    });

    test('the winner on the creating instance replaces the hold by the usage; elsewhere the usage is counted without one', async () => {
      const one = instance(shared, key);
      const object = pendingResponse('resp_local', key.id);
      await one.ownership.record([object]);
      one.background.hold(object.id, await one.limits.admit(key.id, key.name, key.limits, { tokens: 600, costUsd: 0 }));
      await one.background.settle(object, USAGE, { requestId: 'rq-local', upstream: 'default' });
      // The baseline read at the first admit holds the 100 recorded by the test above; 100 more now.
      (await one.limits.admit(key.id, key.name, key.limits, { tokens: 800, costUsd: 0 })).refund();
      await assert.rejects(async () => one.limits.admit(key.id, key.name, key.limits, { tokens: 801, costUsd: 0 }), (error: unknown) => error instanceof GatewayError && error.code === 'budget_exceeded');

      const elsewhere = instance(second, key);
      (await elsewhere.limits.admit(key.id, key.name, key.limits, { tokens: 1, costUsd: 0 })).refund();
      const other = pendingResponse('resp_elsewhere', key.id);
      await elsewhere.ownership.record([other]);
      await elsewhere.background.settle(other, USAGE, { requestId: 'rq-elsewhere', upstream: 'default' });
      await assert.rejects(async () => elsewhere.limits.admit(key.id, key.name, key.limits, { tokens: 801, costUsd: 0 }), (error: unknown) => error instanceof GatewayError && error.code === 'budget_exceeded');
      await Promise.all([one.writer.close(), elsewhere.writer.close()]);
    });

    test('holds past the limit are forgotten but stay counted; a caller without a key is recorded by name', async () => {
      const one = instance(shared, key, 1);
      (await one.limits.admit(key.id, key.name, key.limits, { tokens: 1, costUsd: 0 })).refund();
      one.background.hold('resp_a', await one.limits.admit(key.id, key.name, key.limits, { tokens: 300, costUsd: 0 }));
      one.background.hold('resp_b', await one.limits.admit(key.id, key.name, key.limits, { tokens: 300, costUsd: 0 }));
      assert.equal(one.background.held, 1);
      // 300 used (three records so far) + 600 held: 100 left.
      (await one.limits.admit(key.id, key.name, key.limits, { tokens: 100, costUsd: 0 })).refund();
      await assert.rejects(async () => one.limits.admit(key.id, key.name, key.limits, { tokens: 101, costUsd: 0 }), (error: unknown) => error instanceof GatewayError && error.code === 'budget_exceeded');

      const owned = pendingResponse('resp_token', 'caller:access_token#1');
      await one.ownership.record([owned]);
      await one.background.settle(owned, USAGE, { requestId: 'rq-token', upstream: 'default' });
      await one.writer.flush();
      const [row] = await settlements(owned.id);
      assert.equal(row?.key_id, null);
      assert.equal(row?.key_name, 'access_token#1');
      await one.writer.close();
    });
  });
}
