import { performance } from 'node:perf_hooks';
import type { Logger } from '../observability/logger.js';
import type { KeysRepository } from '../storage/keys-repository.js';
import type { UsageRecord, UsageRepository } from '../storage/usage-repository.js';
import type { StorageHealth } from './storage-health.js';
import type { Meter, UsageEvent } from './usage-event.js';

export interface UsageWriterOptions {
  flushIntervalMs: number;
  logger: Logger;
  /** Records kept while the database is down; beyond it the oldest are dropped (and counted in the log). */
  maxQueued?: number;
  /** A batch this large is written without waiting for the interval. */
  batchSize?: number;
  ping: () => Promise<void>;
  /** Told of each batch written (or not) and of records dropped: the metrics (observability/metrics.ts). */
  observer?: UsageWriterObserver;
}

export interface UsageWriterObserver {
  usageFlushed(durationMs: number, records: number, failed: boolean): void;
  usageDropped(records: number): void;
}

/**
 * Usage records are written in batches off the request path: `record` only appends to an array.
 * A timer flushes every interval (and at once when a batch fills); shutdown flushes what is left.
 * A failed write keeps the records and marks storage down until a write or ping succeeds.
 */
export class UsageWriter implements Meter {
  private queue: UsageRecord[] = [];
  private lastUsed = new Map<string, Date>();
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private dropped = 0;
  private readonly maxQueued: number;
  private readonly batchSize: number;

  constructor(
    private readonly usage: UsageRepository,
    private readonly keys: KeysRepository,
    private readonly health: StorageHealth,
    private readonly options: UsageWriterOptions,
  ) {
    this.maxQueued = options.maxQueued ?? 100_000;
    this.batchSize = options.batchSize ?? 500;
    this.timer = setInterval(() => void this.flush(), options.flushIntervalMs);
    this.timer.unref();
  }

  /** Records waiting to be written (for tests and the admin API). */
  get pending(): number {
    return this.queue.length;
  }

  record(event: UsageEvent): void {
    const usage = event.usage;
    this.queue.push({
      ts: event.time,
      requestId: event.requestId,
      keyId: event.keyId ?? null,
      keyName: event.caller,
      route: event.route,
      model: event.model ?? null,
      upstream: event.upstream ?? null,
      status: event.status,
      promptTokens: usage?.promptTokens ?? 0,
      completionTokens: usage?.completionTokens ?? 0,
      cachedTokens: usage?.cachedTokens ?? 0,
      reasoningTokens: usage?.reasoningTokens ?? 0,
      totalTokens: usage?.totalTokens ?? 0,
      costUsd: event.costUsd,
      latencyMs: event.latencyMs,
      ttfbMs: event.ttfbMs ?? null,
      aborted: event.aborted,
      usageSource: event.usageSource,
      errorCode: event.errorCode ?? null,
      conversationId: event.conversationId ?? null,
    });
    if (event.keyId !== undefined) this.lastUsed.set(event.keyId, event.time);
    if (this.queue.length > this.maxQueued) {
      const excess = this.queue.length - this.maxQueued;
      this.queue.splice(0, excess);
      this.dropped += excess;
      this.options.observer?.usageDropped(excess);
    }
    if (this.queue.length >= this.batchSize && !this.flushing) void this.flush();
  }

  /** One flush at a time; a call during a flush waits for it and then flushes again. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.flushing = this.writeOut().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    if (this.queue.length > 0) this.options.logger.error({ records: this.queue.length }, 'usage records could not be written at shutdown');
  }

  private async writeOut(): Promise<void> {
    const batch = this.queue;
    const touched = this.lastUsed;
    if (batch.length === 0 && touched.size === 0) {
      if (!this.health.healthy) await this.probe();
      return;
    }
    this.queue = [];
    this.lastUsed = new Map();
    let stored = false;
    const startedAt = performance.now();
    try {
      if (batch.length > 0) await this.usage.insertBatch(batch);
      stored = true;
      if (touched.size > 0) await this.keys.touchLastUsed([...touched].map(([id, at]) => ({ id, at })));
      this.options.observer?.usageFlushed(performance.now() - startedAt, batch.length, false);
      if (this.health.markUp()) this.options.logger.warn('usage database is reachable again');
      if (this.dropped > 0) {
        this.options.logger.error({ dropped: this.dropped }, 'usage records were dropped while the database was down');
        this.dropped = 0;
      }
    } catch (error) {
      // Keep what was not written (oldest first) for the next attempt. A batch already stored
      // (only the last-used times failed) is not queued again: it would be counted twice.
      if (!stored) this.queue = batch.concat(this.queue);
      this.options.observer?.usageFlushed(performance.now() - startedAt, stored ? batch.length : 0, true);
      for (const [id, at] of touched) if (!this.lastUsed.has(id)) this.lastUsed.set(id, at);
      if (this.health.markDown(error)) this.options.logger.error({ err: (error as Error).message }, 'usage database write failed; requests fail closed until it recovers');
    }
  }

  private async probe(): Promise<void> {
    try {
      await this.options.ping();
      if (this.health.markUp()) this.options.logger.warn('usage database is reachable again');
    } catch {
      // still down
    }
  }
}
