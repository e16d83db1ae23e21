import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { GatewayError } from '../../src/errors/index.js';
import { BaselineUnavailable } from '../../src/limits/redis-limit-store.js';
import { FailoverLimitStore, LimitTracker, RedisLimitStore, type Demand, type Estimate, type KeyLimits, type LoadUsage, type Reservation, type UsageBaseline } from '../../src/limits/index.js';
import { openRedis, type SharedRedis } from '../../src/storage/redis.js';
import { capturedLogger } from '../helpers/captured-logger.js';
import { dropRedisPrefix, requireRedis, testRedisPrefix } from '../helpers/redis.js';
import { TcpSwitch } from '../helpers/tcp-switch.js';

const redis = requireRedis();
const ZERO: UsageBaseline = { requests: 0, tokens: 0, costUsd: 0 };

async function outcome(admit: () => Reservation | Promise<Reservation>): Promise<Reservation | GatewayError> {
  try {
    return await admit();
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
}

async function refused(admit: () => Reservation | Promise<Reservation>): Promise<GatewayError> {
  const result = await outcome(admit);
  assert.ok(result instanceof GatewayError, 'expected a refusal');
  return result;
}

/** The refusal, or undefined when admitted (and then refunded at once): a look that changes nothing. */
async function probe(admit: () => Reservation | Promise<Reservation>): Promise<GatewayError | undefined> {
  const result = await outcome(admit);
  if (result instanceof GatewayError) return result;
  result.refund();
  return undefined;
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const tokens = (count: number): Estimate => ({ tokens: count, costUsd: 0 });
const dollars = (costUsd: number): Estimate => ({ tokens: 0, costUsd });

/** A TCP pass-through that can hold what clients send without closing anything: a Redis that stalls (a long script, a fork), then catches up. */
class StallSwitch {
  private stalled = false;
  private readonly held: Array<() => void> = [];
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server) {}

  static async start(port: number): Promise<StallSwitch> {
    const server = createServer();
    const relay = new StallSwitch(server);
    server.on('connection', (client) => {
      const target = connect(port, '127.0.0.1');
      relay.sockets.add(client).add(target);
      client.on('data', (chunk) => {
        if (relay.stalled) relay.held.push(() => target.write(chunk));
        else target.write(chunk);
      });
      target.on('data', (chunk) => client.write(chunk));
      const drop = (): void => {
        client.destroy();
        target.destroy();
      };
      client.on('error', drop).on('close', drop);
      target.on('error', drop).on('close', drop);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  stall(stalled: boolean): void {
    this.stalled = stalled;
    if (!stalled) for (const send of this.held.splice(0)) send();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('the shared limit store (Redis)', { skip: redis.skip }, () => {
  const prefix = testRedisPrefix();
  const clients: Redis[] = [];
  let direct: Redis;

  before(() => {
    direct = new Redis(redis.url);
  });
  after(async () => {
    for (const client of clients) client.disconnect();
    direct.disconnect();
    await dropRedisPrefix(redis.url, prefix);
  });

  /** One store per "instance", each on its own connection, all under the test's prefix. */
  function instance(options: { loadUsage?: LoadUsage; holdMs?: number } = {}): RedisLimitStore {
    const client = new Redis(redis.url, { keyPrefix: prefix, enableOfflineQueue: true, commandTimeout: 5000 });
    clients.push(client);
    return new RedisLimitStore({ client, loadUsage: options.loadUsage ?? (() => Promise.resolve(ZERO)), holdMs: options.holdMs ?? 60_000 });
  }

  let keyCounter = 0;
  const freshKey = (): string => `key-${process.pid}-${keyCounter++}`;

  it('admits exactly rpm requests across instances racing for the same key, and refuses the rest with Retry-After', async () => {
    const stores = [instance(), instance(), instance()];
    const key = freshKey();
    const limits: KeyLimits = { rpm: 10 };
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => outcome(() => stores[i % 3]!.admit(key, 'app', limits, tokens(0)))));
    const admitted = results.filter((result): result is Reservation => !(result instanceof GatewayError));
    assert.equal(admitted.length, 10);
    const remaining = admitted.map((reservation) => Number(reservation.headers['x-ratelimit-remaining-requests'])).sort((a, b) => a - b);
    assert.deepEqual(remaining, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'each admission saw the ones before it');
    const refusal = results.find((result): result is GatewayError => result instanceof GatewayError)!;
    assert.equal(refusal.code, 'rate_limit_exceeded');
    assert.equal(refusal.message.startsWith('Rate limit reached for key "app": 10 requests per minute. Try again in'), true, refusal.message);
    const retryMs = Number(refusal.headers?.['retry-after-ms']);
    assert.ok(retryMs > 55_000 && retryMs <= 60_000, `retry-after-ms ${retryMs}`);
    assert.equal(refusal.headers?.['x-ratelimit-remaining-requests'], '0');
    for (const reservation of admitted) reservation.refund();
  });

  it('decides every sequence of admissions, settles and refunds as the in-memory tracker does', async () => {
    type Op = { kind: 'admit'; tokens: number; nano: number } | { kind: 'settle'; index: number; tokens: number; nano: number } | { kind: 'refund'; index: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('admit' as const), tokens: fc.integer({ min: 0, max: 400 }), nano: fc.integer({ min: 0, max: 400_000_000 }) }),
      fc.record({ kind: fc.constant('settle' as const), index: fc.nat(40), tokens: fc.integer({ min: 0, max: 400 }), nano: fc.integer({ min: 0, max: 400_000_000 }) }),
      fc.record({ kind: fc.constant('refund' as const), index: fc.nat(40) }),
    );
    const limitsArbitrary = fc.record({
      rpm: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }),
      tpm: fc.option(fc.integer({ min: 0, max: 2000 }), { nil: undefined }),
      rpd: fc.option(fc.integer({ min: 0, max: 15 }), { nil: undefined }),
      budgetTokens: fc.option(fc.integer({ min: 0, max: 3000 }), { nil: undefined }),
      budgetUsd: fc.option(fc.integer({ min: 0, max: 3000 }).map((cents) => cents / 1000), { nil: undefined }),
      budgetPeriod: fc.constantFrom('day' as const, 'month' as const, 'total' as const),
    });
    const baseline: UsageBaseline = { requests: 2, tokens: 150, costUsd: 0.25 };
    const store = instance({ loadUsage: () => Promise.resolve(baseline) });
    await fc.assert(
      fc.asyncProperty(limitsArbitrary, fc.array(op, { minLength: 1, maxLength: 30 }), async (limits, ops) => {
        const key = freshKey();
        const now = Date.now();
        const tracker = new LimitTracker({ now: () => now, loadUsage: () => Promise.resolve(baseline) });
        const shared: Reservation[] = [];
        const local: Reservation[] = [];
        for (const step of ops) {
          if (step.kind === 'admit') {
            const demand = { tokens: step.tokens, costUsd: step.nano / 1e9 };
            const [a, b] = [await outcome(() => store.admit(key, 'app', limits, demand)), await outcome(() => tracker.admit(key, 'app', limits, demand))];
            if (a instanceof GatewayError || b instanceof GatewayError) {
              assert.ok(a instanceof GatewayError && b instanceof GatewayError, `one admitted, one refused: ${String(a instanceof GatewayError ? a.message : b instanceof GatewayError ? b.message : '')}`);
              assert.equal(a.code, b.code);
              assert.equal(a.headers?.['x-ratelimit-remaining-requests'], b.headers?.['x-ratelimit-remaining-requests']);
              assert.equal(a.headers?.['x-ratelimit-remaining-tokens'], b.headers?.['x-ratelimit-remaining-tokens']);
              continue;
            }
            assert.equal(a.headers['x-ratelimit-remaining-requests'], b.headers['x-ratelimit-remaining-requests']);
            assert.equal(a.headers['x-ratelimit-remaining-tokens'], b.headers['x-ratelimit-remaining-tokens']);
            shared.push(a);
            local.push(b);
          } else if (shared.length > 0) {
            const index = step.index % shared.length;
            if (step.kind === 'settle') {
              shared[index]!.settle({ tokens: step.tokens, costUsd: step.nano / 1e9 });
              local[index]!.settle({ tokens: step.tokens, costUsd: step.nano / 1e9 });
            } else {
              shared[index]!.refund();
              local[index]!.refund();
            }
          }
        }
        for (const reservation of shared) reservation.refund();
      }),
      { numRuns: 40 },
    );
  });

  it('keeps every key under the prefix, with a TTL on each', async () => {
    const store = instance();
    const key = freshKey();
    const reservation = await store.admit(key, 'app', { rpm: 5, tpm: 1000, rpd: 100, budgetUsd: 1, budgetPeriod: 'month' }, { tokens: 10, costUsd: 0.001 });
    const names = await direct.keys(`${prefix}l:{${key}}:*`);
    assert.ok(names.length >= 6, names.join(', '));
    for (const name of names) {
      const ttl = await direct.pttl(name);
      assert.ok(ttl > 0, `${name} has a TTL (${ttl})`);
    }
    assert.deepEqual(await direct.keys(`l:{${key}}:*`), [], 'nothing outside the prefix');
    reservation.settle({ tokens: 5, costUsd: 0.0005 });
  });

  it('counts USD budgets in nanodollars, seeded from the usage database once, and never over-admits under concurrency', async () => {
    const loads: string[] = [];
    const loadUsage: LoadUsage = async (_keyId, since) => {
      loads.push(since?.toISOString() ?? 'total');
      await new Promise((resolve) => setTimeout(resolve, 30));
      return { requests: 3, tokens: 100, costUsd: 0.3 };
    };
    const stores = [instance({ loadUsage }), instance({ loadUsage }), instance({ loadUsage })];
    const key = freshKey();
    const limits: KeyLimits = { budgetUsd: 1, budgetPeriod: 'day' };
    // 0.3 spent: seven requests of $0.1 fit exactly (0.3 + 7 × 0.1 = 1.0), an eighth does not.
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => outcome(() => stores[i % 3]!.admit(key, 'app', limits, dollars(0.1)))));
    const admitted = results.filter((result): result is Reservation => !(result instanceof GatewayError));
    assert.equal(admitted.length, 7);
    assert.ok(loads.length >= 1 && loads.length <= 3, `one load per instance at most: ${loads.join(', ')}`);
    const refusal = results.find((result): result is GatewayError => result instanceof GatewayError)!;
    assert.equal(refusal.code, 'budget_exceeded');
    assert.match(refusal.message, /Budget exceeded for key "app": \$1\.00 per day \(UTC\) \(used \$0\.30, in flight \$0\.70, this request up to \$0\.10\)\. It resets at 00:00 UTC, in /);
    // Settling for less frees the difference, on every instance.
    for (const reservation of admitted) reservation.settle({ tokens: 10, costUsd: 0.05 });
    await until(async () => (await probe(() => stores[1]!.admit(key, 'app', limits, dollars(0.35)))) === undefined);
    const ledger = await direct.keys(`${prefix}l:{${key}}:d:*`);
    assert.equal(ledger.length, 1);
    // 0.3 + 7 × 0.05 settled: whole nanodollars, no float drift.
    assert.equal(await direct.hget(ledger[0]!, 'u'), String(650_000_000));
    assert.equal(await direct.hget(ledger[0]!, 't'), String(100 + 70));
    assert.equal(await direct.hget(ledger[0]!, 'q'), String(3 + 7 + 1), 'refused requests do not count, the probe does');
  });

  it('shares the tpm window: a refund gives tokens back, a settle replaces the reservation, Retry-After is when enough leaves', async () => {
    const [a, b] = [instance(), instance()];
    const key = freshKey();
    const limits: KeyLimits = { tpm: 1000 };
    const first = await a.admit(key, 'app', limits, tokens(600));
    assert.equal(first.headers['x-ratelimit-remaining-tokens'], '400');
    const error = await refused(() => b.admit(key, 'app', limits, tokens(500)));
    assert.equal(error.code, 'rate_limit_exceeded');
    assert.match(error.message, /1000 tokens per minute \(used 600, requested 500\)/);
    assert.ok(Number(error.headers?.['retry-after-ms']) > 55_000);
    first.settle({ tokens: 200, costUsd: 0 });
    await until(async () => {
      const result = await outcome(() => b.admit(key, 'app', limits, tokens(500)));
      if (result instanceof GatewayError) return false;
      assert.equal(result.headers['x-ratelimit-remaining-tokens'], '300');
      result.refund();
      return true;
    });
    await until(async () => (await probe(() => a.admit(key, 'app', limits, tokens(800)))) === undefined);
    const tooLarge = await refused(() => a.admit(key, 'app', limits, tokens(1001)));
    assert.match(tooLarge.message, /Request too large/);
  });

  it('holds a bound while it fits and decides on the estimate when it does not', async () => {
    const store = instance();
    const key = freshKey();
    const limits: KeyLimits = { budgetTokens: 1000 };
    let exactCalls = 0;
    const demand = (bound: number, estimate: number): Demand => ({
      tokens: bound,
      costUsd: 0,
      exact: () => {
        exactCalls += 1;
        return { tokens: estimate, costUsd: 0 };
      },
    });
    const held = await store.admit(key, 'app', limits, demand(400, 100));
    assert.equal(exactCalls, 0, 'a bound that fits is never tokenized');
    const second = await store.admit(key, 'app', limits, demand(900, 500));
    assert.equal(exactCalls, 1, 'a bound that does not fit is decided on its estimate');
    const error = await refused(() => store.admit(key, 'app', limits, demand(200, 150)));
    assert.equal(error.code, 'budget_exceeded');
    assert.match(error.message, /in flight 900/);
    held.keep!();
    second.refund();
    await until(async () => (await probe(() => store.admit(key, 'app', limits, tokens(900)))) === undefined);
  });

  it('drops the reservations of an instance that died once their deadline passes, and still counts a late settle', async () => {
    const dying = instance({ holdMs: 2000 });
    const survivor = instance({ holdMs: 2000 });
    const key = freshKey();
    const limits: KeyLimits = { budgetTokens: 1000, budgetPeriod: 'total' };
    const orphan = await dying.admit(key, 'app', limits, tokens(1000));
    const error = await refused(() => survivor.admit(key, 'app', limits, tokens(1)));
    assert.equal(error.code, 'budget_exceeded');
    await new Promise((resolve) => setTimeout(resolve, 2200));
    const after = await survivor.admit(key, 'app', limits, tokens(600));
    // The orphan's instance comes back to settle after all: what it used counts, its hold is gone.
    orphan.settle({ tokens: 300, costUsd: 0 });
    await until(async () => /used 300, in flight 600,/.test((await probe(() => survivor.admit(key, 'app', limits, tokens(101))))?.message ?? ''));
    after.refund();
  });

  it('counts recorded usage (a background response) into the shared window and ledgers', async () => {
    const [a, b] = [instance(), instance()];
    const key = freshKey();
    const limits: KeyLimits = { tpm: 1000, budgetTokens: 5000 };
    (await a.admit(key, 'app', limits, tokens(0))).refund();
    b.record(key, limits, { tokens: 900, costUsd: 0 });
    await until(async () => (await probe(() => a.admit(key, 'app', limits, tokens(200)))) !== undefined);
    const error = await refused(() => a.admit(key, 'app', limits, tokens(200)));
    assert.match(error.message, /used 900, requested 200/);
    const budget = await refused(() => a.admit(key, 'app', { budgetTokens: 5000 }, tokens(4101)));
    assert.match(budget.message, /used 900, in flight 0, this request up to 4101/);
  });

  it('while Redis is away: 503 limits_unavailable with fail_open off, this instance\'s own limits with it on; back by itself', async () => {
    const target = new URL(redis.url);
    const relay = await TcpSwitch.start(target.hostname, Number(target.port || 6379));
    const url = new URL(redis.url);
    url.port = String(relay.port);
    const { logger, lines } = capturedLogger();
    const shared: SharedRedis = openRedis(url.toString(), { logger, prefix });
    let failOpen = false;
    const store = new FailoverLimitStore({
      shared: new RedisLimitStore({ client: shared.client, loadUsage: () => Promise.resolve(ZERO), holdMs: 60_000 }),
      local: new LimitTracker({ loadUsage: () => Promise.resolve(ZERO) }),
      health: shared,
      failOpen: () => failOpen,
      logger,
    });
    const key = freshKey();
    const limits: KeyLimits = { rpm: 100, rpd: 1000 };
    try {
      assert.equal(await shared.ready(), true);
      (await store.admit(key, 'app', limits, tokens(0))).settle({ tokens: 0, costUsd: 0 });
      relay.cut();
      await until(() => !shared.healthy);
      const started = Date.now();
      const error = await refused(() => store.admit(key, 'app', limits, tokens(0)));
      assert.equal(error.code, 'limits_unavailable');
      assert.equal(error.status, 503);
      assert.ok(Date.now() - started < 1500, 'refused at once, not after a wait');
      failOpen = true;
      for (let i = 0; i < 3; i += 1) {
        const local = await store.admit(key, 'app', { rpm: 2, rpd: 1000 }, tokens(0));
        local.settle({ tokens: 0, costUsd: 0 });
        if (i === 2) assert.fail('the local limits apply rpm 2');
      }
    } catch (error) {
      if (!(error instanceof GatewayError) || error.code !== 'rate_limit_exceeded') throw error;
    }
    try {
      relay.restore();
      assert.equal(await shared.ready(10_000), true);
      // The two local admissions reach the shared day ledger: 1 + 2 requests.
      await until(async () => {
        const ledgers = await direct.keys(`${prefix}l:{${key}}:d:*`);
        return ledgers.length === 1 && (await direct.hget(ledgers[0]!, 'q')) === '3';
      });
      const back = await store.admit(key, 'app', limits, tokens(0));
      assert.equal(back.headers['x-ratelimit-remaining-requests'], '98', 'shared again: the window has the admission before the outage and this one');
      assert.ok(lines.some((line) => line.msg === 'redis unreachable; until it recovers, shared limits follow fail_open, key changes come by the poll and the cache misses'));
    } finally {
      await shared.close();
      await relay.close();
    }
  });

  it('passes a usage database outage on as the database\'s (fail_open applies as on one instance), not as Redis\'s', async () => {
    const { logger, lines } = capturedLogger();
    const shared = openRedis(redis.url, { logger, prefix });
    let databaseUp = false;
    const store = new FailoverLimitStore({
      shared: new RedisLimitStore({ client: shared.client, loadUsage: () => (databaseUp ? Promise.resolve(ZERO) : Promise.reject(new Error('connection refused'))), holdMs: 60_000 }),
      local: new LimitTracker({ loadUsage: () => Promise.resolve(ZERO) }),
      health: shared,
      failOpen: () => false,
      logger,
    });
    try {
      assert.equal(await shared.ready(), true);
      const key = freshKey();
      await assert.rejects(Promise.resolve().then(() => store.admit(key, 'app', { rpd: 10 }, tokens(0))), BaselineUnavailable);
      assert.equal(lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('shared limits')).length, 0, 'Redis is not blamed');
      databaseUp = true;
      const admitted = await store.admit(key, 'app', { rpd: 10 }, tokens(0));
      assert.equal(admitted.headers['x-ratelimit-limit-requests'], undefined);
      admitted.settle({ tokens: 0, costUsd: 0 });
    } finally {
      await shared.close();
    }
  });

  it('a Redis that stops answering fails the admission after the command timeout, never hangs, and a timed-out reservation is given back', async () => {
    const target = new URL(redis.url);
    const relay = await StallSwitch.start(Number(target.port || 6379));
    const url = new URL(redis.url);
    url.port = String(relay.port);
    const { logger, lines } = capturedLogger();
    const shared = openRedis(url.toString(), { logger, prefix, commandTimeoutMs: 300 });
    const store = new FailoverLimitStore({
      shared: new RedisLimitStore({ client: shared.client, loadUsage: () => Promise.resolve(ZERO), holdMs: 60_000 }),
      local: new LimitTracker({ loadUsage: () => Promise.resolve(ZERO) }),
      health: shared,
      failOpen: () => false,
      logger,
    });
    const key = freshKey();
    const limits: KeyLimits = { budgetTokens: 1000 };
    try {
      assert.equal(await shared.ready(), true);
      relay.stall(true);
      const started = Date.now();
      const errors = await Promise.all([1, 2, 3].map(() => refused(() => store.admit(key, 'app', limits, tokens(400)))));
      const elapsed = Date.now() - started;
      assert.deepEqual(errors.map((error) => error.code), ['limits_unavailable', 'limits_unavailable', 'limits_unavailable']);
      assert.ok(elapsed < 3000, `failed after the command timeout, not later (${elapsed} ms)`);
      assert.equal(lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('shared limits: redis did not answer')).length, 1, 'logged once');
      relay.stall(false);
      // Nothing the stalled admissions may have written holds the budget.
      await until(async () => (await probe(() => store.admit(key, 'app', limits, tokens(1000)))) === undefined);
    } finally {
      await shared.close();
      await relay.close();
    }
  });
});
