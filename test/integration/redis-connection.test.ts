import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { openRedis, type SharedRedis } from '../../src/storage/redis.js';
import { capturedLogger } from '../helpers/captured-logger.js';
import { dropRedisPrefix, requireRedis, testRedisPrefix } from '../helpers/redis.js';
import { TcpSwitch } from '../helpers/tcp-switch.js';
import { startTestGateway } from '../helpers/gateway.js';

const redis = requireRedis();

describe('the shared Redis connection', { skip: redis.skip }, () => {
  const prefix = testRedisPrefix();
  let direct: Redis;
  before(() => {
    direct = new Redis(redis.url);
  });
  after(async () => {
    direct.disconnect();
    await dropRedisPrefix(redis.url, prefix);
  });

  it('writes every key under the prefix and delivers published messages on prefixed channels', async () => {
    const { logger } = capturedLogger();
    const shared = openRedis(redis.url, { logger, prefix });
    try {
      assert.equal(await shared.ready(), true);
      await shared.client.set('probe', 'value');
      assert.equal(await direct.get(`${prefix}probe`), 'value');
      assert.equal(await direct.get('probe'), null);
      const received: string[] = [];
      await shared.subscribe('events', (message) => received.push(message));
      const listeners = await direct.pubsub('NUMSUB', `${prefix}events`);
      assert.equal(listeners[1], 1, 'subscribed on the prefixed channel');
      await shared.publish('events', 'hello');
      await direct.publish('events', 'not ours');
      const deadline = Date.now() + 5000;
      while (received.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(received, ['hello']);
    } finally {
      await shared.close();
    }
  });

  it('fails commands at once while Redis is unreachable, logs the outage once, and recovers by itself', async () => {
    const target = new URL(redis.url);
    const relay = await TcpSwitch.start(target.hostname, Number(target.port || 6379));
    const { logger, lines } = capturedLogger();
    const url = new URL(redis.url);
    url.port = String(relay.port);
    const shared: SharedRedis = openRedis(url.toString(), { logger, prefix });
    const health: boolean[] = [];
    shared.onHealthChange((healthy) => health.push(healthy));
    try {
      assert.equal(await shared.ready(), true);
      relay.cut();
      const deadline = Date.now() + 5000;
      while (shared.healthy && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(shared.healthy, false);
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const started = Date.now();
        await assert.rejects(shared.client.get('probe'));
        assert.ok(Date.now() - started < 1500, 'a command fails fast rather than waiting for a reconnect');
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      const outages = lines.filter((line) => line.msg === 'redis unreachable; until it recovers, shared limits follow fail_open, key changes come by the poll and the cache misses');
      assert.equal(outages.length, 1, 'one log line per outage, not one per reconnect attempt');
      relay.restore();
      assert.equal(await shared.ready(10_000), true);
      await shared.client.set('after', 'ok');
      assert.equal(await direct.get(`${prefix}after`), 'ok');
      assert.deepEqual(health, [true, false, true]);
      assert.ok(lines.some((line) => line.msg === 'redis reachable again'));
    } finally {
      await shared.close();
      await relay.close();
    }
  });

  it('never puts the password of redis_url in a log line', async () => {
    const { logger, lines } = capturedLogger();
    const shared = openRedis('redis://:hunter2-very-secret@127.0.0.1:1', { logger, prefix });
    try {
      assert.equal(await shared.ready(500), false);
      await assert.rejects(shared.client.get('x'));
      void shared.subscribe('never', () => undefined).catch(() => undefined);
      assert.ok(lines.length > 0);
      assert.ok(!JSON.stringify(lines).includes('hunter2'), JSON.stringify(lines));
    } finally {
      // Never connected, a subscriber waiting: closing still ends at once.
      const closing = Date.now();
      await shared.close();
      assert.ok(Date.now() - closing < 1000);
    }
  });

  it('shows in /metrics as openai_api_redis_up, 1 while reachable and 0 while cut, and not at all without redis_url', async () => {
    const target = new URL(redis.url);
    const relay = await TcpSwitch.start(target.hostname, Number(target.port || 6379));
    const url = new URL(redis.url);
    url.port = String(relay.port);
    const admin = 'metrics-admin-token-0123456789';
    const withRedis = await startTestGateway({ BASE_URL: 'http://127.0.0.1:9', APIKEY: 'sk-upstream-unused-123456', ADMIN_TOKEN: admin, REDIS_URL: url.toString(), REDIS_PREFIX: prefix });
    const without = await startTestGateway({ BASE_URL: 'http://127.0.0.1:9', APIKEY: 'sk-upstream-unused-123456', ADMIN_TOKEN: admin });
    const scrape = async (adminUrl: string | undefined): Promise<string> => (await fetch(`${adminUrl}/metrics`, { headers: { authorization: `Bearer ${admin}` } })).text();
    try {
      assert.match(await scrape(withRedis.adminUrl), /^openai_api_redis_up 1$/m);
      relay.cut();
      const deadline = Date.now() + 5000;
      while (withRedis.gateway.redis?.healthy === true && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.match(await scrape(withRedis.adminUrl), /^openai_api_redis_up 0$/m);
      relay.restore();
      assert.equal(await withRedis.gateway.redis?.ready(10_000), true);
      assert.match(await scrape(withRedis.adminUrl), /^openai_api_redis_up 1$/m);
      assert.doesNotMatch(await scrape(without.adminUrl), /openai_api_redis_up/);
    } finally {
      await withRedis.close();
      await without.close();
      await relay.close();
    }
  });
});
