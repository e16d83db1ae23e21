import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { UsageRetention, type UsageRetentionOptions } from '../../../src/metering/usage-retention.js';
import { createLogger } from '../../../src/observability/logger.js';
import { UsageRepository, type UsageRecord } from '../../../src/storage/usage-repository.js';
import { storageBackends } from '../../helpers/databases.js';
import type { TestDatabase } from '../../helpers/databases.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.parse('2031-07-20T10:30:00.000Z');

function record(ts: number, i: number): UsageRecord {
  return {
    ts: new Date(ts), requestId: `ret_${i}`, keyId: i % 2 === 0 ? 'key_a' : null, keyName: i % 2 === 0 ? 'alice' : 'anonymous', route: '/v1/chat/completions',
    model: 'gpt-4o-mini', upstream: 'primary', status: 200, promptTokens: 10, completionTokens: 5, cachedTokens: 0, reasoningTokens: 0, totalTokens: 15,
    costUsd: 0.001, latencyMs: 10, ttfbMs: null, aborted: false, usageSource: 'upstream', errorCode: null,
  };
}

/** One record per 3 hours from 40 days ago to now, plus a few either side of the cutoff hour. */
function makeRecords(): UsageRecord[] {
  const times: number[] = [];
  for (let t = NOW - 40 * DAY; t <= NOW; t += 3 * HOUR) times.push(t);
  const cutoffHour = Math.floor((NOW - 30 * DAY) / HOUR) * HOUR;
  times.push(cutoffHour - 1, cutoffHour, cutoffHour + 1, NOW - 30 * DAY);
  return times.map(record);
}

for (const backend of storageBackends()) {
  describe(`usage retention on ${backend.name}`, () => {
    let database: TestDatabase;
    let usage: UsageRepository;
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger('info', new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) }));
    const records = makeRecords();
    const cutoff = new Date(Math.floor((NOW - 30 * DAY) / HOUR) * HOUR).toISOString();

    const raw = async () => (await database.db.selectFrom('usage_records').select('ts').orderBy('ts').execute()).map((row) => row.ts);
    const rollup = async () => [
      await database.db.selectFrom('usage_hourly').selectAll().orderBy('hour').orderBy('key_name').execute(),
      await database.db.selectFrom('usage_daily').selectAll().orderBy('day').orderBy('key_name').execute(),
    ];
    const job = (options: Partial<UsageRetentionOptions> = {}) => new UsageRetention(usage, { retentionDays: () => 30, logger, now: () => new Date(NOW), pauseMs: 1, ...options });

    before(async () => {
      database = await backend.open();
      usage = new UsageRepository(database);
    });
    after(async () => {
      await database.cleanup();
    });

    const fresh = async () => {
      await database.db.deleteFrom('usage_records').execute();
      await database.db.deleteFrom('usage_hourly').execute();
      await database.db.deleteFrom('usage_daily').execute();
      await usage.insertBatch(records);
    };

    test('a pass deletes, in batches, exactly the raw rows of the hours before now minus usage_retention, and no rollup row', async () => {
      await fresh();
      const hourly = await rollup();
      const kept = records.map((r) => r.ts.toISOString()).filter((ts) => ts >= cutoff).sort();
      const old = records.length - kept.length;
      assert.ok(old > 70, `${old} old records`);
      // Batches of 7: ten and more statements for one pass.
      assert.equal(await job({ batchSize: 7 }).runOnce(), old);
      assert.deepEqual(await raw(), kept);
      assert.deepEqual(await rollup(), hourly);
      assert.ok(lines.some((line) => line['msg'] === 'usage records past usage_retention deleted' && line['deleted'] === old && line['before'] === cutoff));
      assert.equal(await job({ batchSize: 7 }).runOnce(), 0, 'a second pass finds nothing');
    });

    test('usage_retention 0 keeps every raw row; the setting is read at every pass', async () => {
      await fresh();
      let days = 0;
      const retention = job({ retentionDays: () => days });
      assert.equal(await retention.runOnce(), 0);
      assert.equal((await raw()).length, records.length);
      days = 39;
      assert.ok((await retention.runOnce()) > 0);
      assert.ok((await raw()).every((ts) => ts >= new Date(Math.floor((NOW - 39 * DAY) / HOUR) * HOUR).toISOString()));
    });

    test('stop() during a pass ends it after the statement under way, not after the pause', async () => {
      await fresh();
      const retention = job({ batchSize: 5, pauseMs: 60_000 });
      const pass = retention.runOnce();
      // Let the first statement run; the pass then waits out its (long) pause.
      while ((await raw()).length === records.length) await new Promise((resolve) => setTimeout(resolve, 5));
      const started = Date.now();
      await retention.stop();
      assert.ok(Date.now() - started < 5_000);
      assert.equal(await pass, 5);
      assert.equal((await raw()).length, records.length - 5);
    });

    test('start() runs the first pass after its delay and then one per interval, until stopped', async () => {
      await fresh();
      let passes = 0;
      const retention = job({ firstDelayMs: 10, intervalMs: 20, retentionDays: () => (passes++, 30) });
      retention.start();
      while (passes < 3) await new Promise((resolve) => setTimeout(resolve, 5));
      await retention.stop();
      const after = passes;
      assert.ok((await raw()).every((ts) => ts >= cutoff));
      await new Promise((resolve) => setTimeout(resolve, 60));
      assert.equal(passes, after, 'no pass after stop()');
    });

    test('a failing delete is logged and the next pass tries again', async () => {
      await fresh();
      await database.db.schema.alterTable('usage_records').renameTo('usage_records_away').execute();
      try {
        assert.equal(await job().runOnce(), 0);
        assert.ok(lines.some((line) => line['msg'] === 'deleting usage records past usage_retention failed; the next pass tries again'));
      } finally {
        await database.db.schema.alterTable('usage_records_away').renameTo('usage_records').execute();
      }
      assert.ok((await job().runOnce()) > 0);
    });
  });
}
