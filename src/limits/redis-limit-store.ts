import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { GatewayError } from '../errors/index.js';
import { nonNegative } from './ledger.js';
import type { Demand, Estimate, KeyLimits, LimitStore, LoadUsage, Reservation } from './limit-store.js';
import { limitRejection, type LimitView } from './limit-rejection.js';
import { periodBounds, MINUTE_MS, type PeriodKind } from './periods.js';
import { setRequestHeaders, setTokenHeaders } from './rate-limit-headers.js';
import { admitArgs, admitKeys, decodeAdmit, keyNames, LEDGER_KINDS, ledgerExpiry, recordKeys, releaseKeys, toNano, TOTAL_LEDGER_TTL_MS, wholeTokens, type AdmitReply } from './redis-keys.js';
import { ADMIT_SCRIPT, RECORD_SCRIPT, RELEASE_SCRIPT, SEED_SCRIPT } from './redis-scripts.js';

export interface RedisLimitStoreOptions {
  /** The shared connection (storage/redis.ts): it adds the key prefix and fails commands after its timeout. */
  client: Redis;
  /** The key's recorded usage since the start of a period, to seed a ledger Redis does not have. */
  loadUsage: LoadUsage;
  /** See reservationHoldMs (redis-keys.ts). */
  holdMs: number;
  /** Called with every failed write (settle, refund, record, replay); the caller logs. */
  onError?: (error: unknown) => void;
  /** Milliseconds since the epoch, naming calendar periods; windows use Redis's clock. */
  now?: () => number;
}

/** Spend the shared ledgers did not see (a settle that failed, an admission decided locally), kept to add later. */
interface Deferred {
  requests: number;
  tokens: number;
  nano: number;
  /** When the first of it happened: a ledger seeded from the database after that has it already. */
  since: number;
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
const UNLIMITED: Reservation = Object.freeze({ headers: NO_HEADERS, settle() {}, refund() {} });
/** Keys whose unseen spend is kept while Redis is away; past this, the rest is dropped (and counted). */
const MAX_DEFERRED_KEYS = 10_000;
/** A background response's kept reservation holds at least this long. */
const KEEP_HOLD_MS = 3_600_000;

/** A Lua script run by its SHA1, sent whole only when Redis does not know it yet (after a restart). */
class Script {
  private readonly sha: string;
  constructor(private readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(client: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

/** The usage database could not give a ledger's baseline: the database's outage, not Redis's (fail_open decides as for one instance). */
export class BaselineUnavailable extends Error {
  constructor(cause: unknown) {
    super(`the usage baseline could not be read: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'BaselineUnavailable';
  }
}

const ADMIT = new Script(ADMIT_SCRIPT);
const RELEASE = new Script(RELEASE_SCRIPT);
const RECORD = new Script(RECORD_SCRIPT);
const SEED = new Script(SEED_SCRIPT);

/**
 * Rate limits and budgets shared by every instance through Redis: the same decisions as
 * LimitTracker, made by one Lua script per admission (redis-scripts.ts) that reads and writes a
 * key's windows, ledgers and holds atomically — one round trip per request, however many limits
 * the key has. Settling and refunding are one script each, sent without waiting.
 *
 * Differences from LimitTracker, by design:
 * - A bound (a Demand with `exact`) is held while it fits; when it does not, the request is
 *   decided again on its estimate (a second round trip, near the limit only). Other requests'
 *   bounds in flight are not tightened first (they may be on other instances), so near the limit
 *   a request can be refused that its estimate alone would have fitted: conservative, never over.
 * - Reservations have a deadline (`holdMs`): one whose instance died is dropped by the next
 *   admission of its key instead of holding the budget forever.
 * - forget() changes nothing shared: limits arrive with every call, and the shared spend stays
 *   right across a change of limits; a key deleted leaves state that expires by its TTLs.
 */
export class RedisLimitStore implements LimitStore {
  private readonly client: Redis;
  private readonly now: () => number;
  /** Unique per process: admission ids are `<tag><counter>`. */
  private readonly tag = `${randomBytes(4).toString('hex')}:`;
  private counter = 0;
  /** Ledger seeds in progress, by Redis key: one database read per ledger per instance at a time. */
  private readonly seeding = new Map<string, Promise<void>>();
  private readonly deferred = new Map<string, Deferred>();
  private replaying: Promise<void> | undefined;
  /** Spend dropped because too many keys were deferred; for the admin status and logs. */
  droppedDeferred = 0;

  constructor(private readonly options: RedisLimitStoreOptions) {
    this.client = options.client;
    this.now = options.now ?? Date.now;
  }

  async admit(keyId: string, keyName: string, limits: KeyLimits, demand: Demand): Promise<Reservation> {
    if (limits.rpm == null && limits.tpm == null && limits.rpd == null && limits.budgetTokens == null && limits.budgetUsd == null) return UNLIMITED;
    const id = this.tag + (this.counter++).toString(36);
    let tokens = wholeTokens(demand.tokens);
    let nano = toNano(demand.costUsd);
    let loose = demand.exact !== undefined;
    for (let seeds = 0; ; ) {
      const now = this.now();
      const names = keyNames(keyId, now);
      let reply: AdmitReply;
      try {
        reply = decodeAdmit(await ADMIT.run(this.client, admitKeys(names), admitArgs(id, limits, tokens, nano, this.options.holdMs)));
      } catch (error) {
        // A script that timed out here may still have run in Redis: give back what it may hold.
        this.release(keyId, id, 'r', 0, 0, 0);
        throw error;
      }
      if (reply.status === 'seed') {
        if (++seeds > LEDGER_KINDS.length) throw new Error(`the ${reply.period} ledger of key ${keyId} could not be seeded in Redis`);
        await this.seed(keyId, reply.period, now);
        continue;
      }
      if (reply.status === 'refused') {
        if (loose) {
          // Decide on the estimate the bound stood for (see the class comment).
          const estimate = demand.exact!();
          tokens = wholeTokens(estimate.tokens);
          nano = toNano(estimate.costUsd);
          loose = false;
          continue;
        }
        throw refusal(reply, keyName, limits, tokens, nano, now);
      }
      return new SharedReservation(this, keyId, id, tokens, nano, replyHeaders(reply, limits), loose ? demand : undefined);
    }
  }

  record(keyId: string, limits: KeyLimits, actual: Estimate): void {
    const tokens = wholeTokens(actual.tokens);
    const nano = toNano(actual.costUsd);
    const names = keyNames(keyId, this.now());
    const id = this.tag + (this.counter++).toString(36);
    RECORD.run(this.client, recordKeys(names), [id, limits.tpm == null ? '0' : '1', 0, tokens, nano, 0]).then(undefined, (error: unknown) => {
      this.defer(keyId, 0, tokens, nano);
      this.options.onError?.(error);
    });
  }

  /** Nothing shared: see the class comment. */
  forget(_keyId: string): void {}

  /** Spend the shared ledgers missed (this instance decided alone while Redis was away): added when it is back, see replay(). */
  defer(keyId: string, requests: number, tokens: number, nano: number): void {
    const entry = this.deferred.get(keyId);
    if (entry !== undefined) {
      entry.requests += requests;
      entry.tokens += tokens;
      entry.nano += nano;
    } else if (this.deferred.size < MAX_DEFERRED_KEYS) {
      this.deferred.set(keyId, { requests, tokens, nano, since: this.now() });
    } else {
      this.droppedDeferred += 1;
    }
  }

  /** Number of keys with spend waiting for Redis. */
  get deferredKeys(): number {
    return this.deferred.size;
  }

  /** Adds the deferred spend to the shared ledgers (ledgers seeded from the database since skip it); stops at the first failure. */
  replay(): Promise<void> {
    this.replaying ??= this.replayAll().finally(() => (this.replaying = undefined));
    return this.replaying;
  }

  private async replayAll(): Promise<void> {
    for (const [keyId, entry] of [...this.deferred]) {
      this.deferred.delete(keyId);
      const names = keyNames(keyId, this.now());
      try {
        await RECORD.run(this.client, recordKeys(names), [this.tag + (this.counter++).toString(36), '0', entry.requests, entry.tokens, entry.nano, entry.since]);
      } catch (error) {
        const now = this.deferred.get(keyId);
        if (now !== undefined) {
          now.requests += entry.requests;
          now.tokens += entry.tokens;
          now.nano += entry.nano;
          now.since = entry.since;
        } else {
          this.deferred.set(keyId, entry);
        }
        this.options.onError?.(error);
        return;
      }
    }
  }

  /** Runs RELEASE_SCRIPT without waiting; a settle that cannot be written is deferred. */
  release(keyId: string, id: string, mode: 's' | 'r' | 'k', tokens: number, nano: number, holdMs: number): void {
    const names = keyNames(keyId, this.now());
    RELEASE.run(this.client, releaseKeys(names), [id, mode, tokens, nano, Math.round(holdMs)]).then(undefined, (error: unknown) => {
      // A refund or keep that fails leaves a hold that expires at its deadline.
      if (mode === 's') this.defer(keyId, 0, tokens, nano);
      this.options.onError?.(error);
    });
  }

  get keepHoldMs(): number {
    return Math.max(KEEP_HOLD_MS, this.options.holdMs);
  }

  /** Creates `kind`'s ledger from the usage database unless another instance (or call) did first. */
  private seed(keyId: string, kind: PeriodKind, now: number): Promise<void> {
    const names = keyNames(keyId, now);
    const ledger = names.ledgers[LEDGER_KINDS.indexOf(kind)]!;
    let pending = this.seeding.get(ledger);
    if (pending === undefined) {
      pending = (async () => {
        const { start } = periodBounds(kind, now);
        let baseline;
        try {
          baseline = await this.options.loadUsage(keyId, start === undefined ? undefined : new Date(start));
        } catch (error) {
          throw new BaselineUnavailable(error);
        }
        const args = [Math.round(nonNegative(baseline.requests)), wholeTokens(baseline.tokens), toNano(baseline.costUsd), ledgerExpiry(kind, now), TOTAL_LEDGER_TTL_MS];
        await SEED.run(this.client, [ledger], args);
      })().finally(() => this.seeding.delete(ledger));
      this.seeding.set(ledger, pending);
    }
    return pending;
  }
}

/** One admitted request's hold in Redis. */
class SharedReservation implements Reservation {
  private done = false;

  constructor(
    private readonly store: RedisLimitStore,
    private readonly keyId: string,
    private readonly id: string,
    private tokens: number,
    private nano: number,
    readonly headers: Readonly<Record<string, string>>,
    /** Set while it holds a bound: what to ask for the estimate. */
    private demand: Demand | undefined,
  ) {}

  settle(actual: { tokens: number; costUsd: number }): void {
    if (this.done) return;
    this.done = true;
    this.store.release(this.keyId, this.id, 's', wholeTokens(actual.tokens), toNano(actual.costUsd), 0);
  }

  refund(): void {
    if (this.done) return;
    this.done = true;
    this.store.release(this.keyId, this.id, 'r', 0, 0, 0);
  }

  /** Holds the estimate instead of the bound, and for longer: a background response may take a while. */
  keep(): void {
    if (this.done) return;
    if (this.demand !== undefined) {
      const estimate = this.demand.exact!();
      this.demand = undefined;
      this.tokens = wholeTokens(estimate.tokens);
      this.nano = toNano(estimate.costUsd);
    }
    this.store.release(this.keyId, this.id, 'k', this.tokens, this.nano, this.store.keepHoldMs);
  }
}

type Decided = Extract<AdmitReply, { now: number }>;

/** x-ratelimit-* headers from an admission's reply, as LimitTracker makes them. */
function replyHeaders(reply: Decided, limits: KeyLimits): Readonly<Record<string, string>> {
  const { rpm, tpm } = limits;
  if (rpm == null && tpm == null) return NO_HEADERS;
  const headers: Record<string, string> = {};
  if (rpm != null) setRequestHeaders(headers, rpm, rpm - reply.requests, reply.requests === 0 ? 0 : reply.lastRequest + MINUTE_MS - reply.now);
  if (tpm != null) setTokenHeaders(headers, tpm, tpm - reply.tokensUsed, reply.lastTokens === 0 ? 0 : reply.lastTokens + MINUTE_MS - reply.now);
  return headers;
}

/** The 429, built by the same limitRejection as LimitTracker's from what the script read. */
function refusal(reply: Decided, keyName: string, limits: KeyLimits, tokens: number, nano: number, localNow: number): GatewayError {
  // Calendar periods end by this instance's clock; windows by Redis's, on which their times are.
  const shift = reply.now - localNow;
  const view: LimitView = {
    requests: {
      count: () => reply.requests,
      // Asked only for the slot that frees first for this request, which the script looked up.
      expiryOf: () => reply.requestAt + MINUTE_MS,
      msUntilEmpty: (now) => (reply.requests === 0 ? 0 : reply.lastRequest + MINUTE_MS - now),
    },
    tokens: {
      used: () => reply.tokensUsed,
      freeAt: () => reply.tokensAt + MINUTE_MS,
      msUntilEmpty: (now) => (reply.lastTokens === 0 ? 0 : reply.lastTokens + MINUTE_MS - now),
    },
    day: { requests: reply.today, end: periodBounds('day', localNow).end + shift },
    // Only the budget's period is asked for: the script read that ledger.
    ledger: (kind: PeriodKind) => ({
      requests: kind === 'day' ? reply.today : 0,
      tokens: reply.spentTokens,
      costUsd: reply.spentNano / 1e9,
      reservedTokens: reply.heldTokens,
      reservedUsd: reply.heldNano / 1e9,
      end: periodBounds(kind, localNow).end + shift,
    }),
  };
  return limitRejection(view, keyName, limits, tokens, nano / 1e9, reply.now);
}
