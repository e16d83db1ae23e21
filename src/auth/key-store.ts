import type { Logger } from '../observability/logger.js';
import type { KeysRepository } from '../storage/keys-repository.js';
import { toAppKey, type AppKey } from './app-key.js';

export interface KeyStoreOptions {
  /** How often to check the database for keys changed elsewhere (CLI, another instance). */
  refreshMs: number;
  /** How long an unknown hash is remembered as unknown, so a flood of bad keys cannot flood the database. */
  negativeTtlMs?: number;
  logger: Logger;
  onStorageError?: (error: unknown) => void;
  /**
   * Called for each key whose limits changed or that went away, once the new state is in place:
   * its limit state must be dropped (`LimitStore.forget`), whoever made the change.
   */
  onLimitsChanged?: (keyId: string) => void;
}

const NEGATIVE_CACHE_LIMIT = 10_000;

/**
 * Every app key, in memory, by SHA-256 of its secret: authenticating a request is one hash and
 * one Map lookup. A key created a moment ago by the CLI is found on a cache miss; edits made
 * elsewhere (disable, delete, limits) arrive as a hint naming the key (reloadKey, from the shared
 * Redis) and, as the fallback, by a cheap fingerprint poll. Loads and reloads run one at a time,
 * so an older read can never overwrite a newer one.
 */
export class KeyStore {
  private byHash = new Map<string, AppKey>();
  private readonly unknown = new Map<string, number>();
  private readonly pending = new Map<string, Promise<AppKey | undefined>>();
  private fingerprint = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly negativeTtlMs: number;
  /** Loads and reloads, one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Bumped by every load and reload: a cache-miss read that started before one is not kept. */
  private generation = 0;

  constructor(
    private readonly repository: KeysRepository,
    private readonly options: KeyStoreOptions,
  ) {
    this.negativeTtlMs = options.negativeTtlMs ?? 2000;
  }

  get size(): number {
    return this.byHash.size;
  }

  /** Reads every key again. */
  load(): Promise<void> {
    return this.serially(async () => {
      const fingerprint = await this.repository.fingerprint();
      const rows = await this.repository.list();
      const before = this.limitsById();
      const next = new Map<string, AppKey>();
      for (const row of rows) next.set(row.keyHash, toAppKey(row));
      this.byHash = next;
      this.generation += 1;
      this.originSet = new Set();
      for (const key of next.values()) this.remember(key);
      this.unknown.clear();
      this.fingerprint = fingerprint;
      const after = this.limitsById();
      for (const [id, limits] of before) if (after.get(id) !== limits) this.options.onLimitsChanged?.(id);
    });
  }

  /**
   * Reads one key again (created, changed, rotated or deleted elsewhere): one indexed read instead
   * of every key. The fingerprint is left as it was, so the next poll still reloads everything
   * once, catching whatever else changed meanwhile (origins of a removed key, say).
   */
  reloadKey(id: string): Promise<void> {
    return this.serially(async () => {
      const row = await this.repository.getById(id);
      const after = row === undefined ? undefined : toAppKey(row);
      let before: AppKey | undefined;
      // A rotation changes the hash: drop the entry under the old one.
      for (const [hash, key] of this.byHash) {
        if (key.id !== id) continue;
        before = key;
        this.byHash.delete(hash);
      }
      this.generation += 1;
      if (row !== undefined && after !== undefined) {
        this.byHash.set(row.keyHash, after);
        this.unknown.delete(row.keyHash);
        this.remember(after);
      }
      if (before !== undefined && this.limitsJson(before) !== this.limitsJson(after)) this.options.onLimitsChanged?.(id);
    });
  }

  /** Each key's limits, serialised: compared before and after a reload to reset only changed limit state. */
  limitsById(): Map<string, string> {
    const out = new Map<string, string>();
    for (const key of this.byHash.values()) out.set(key.id, this.limitsJson(key)!);
    return out;
  }

  private limitsJson(key: AppKey | undefined): string | undefined {
    return key === undefined ? undefined : JSON.stringify(key.limits);
  }

  private serially(work: () => Promise<void>): Promise<void> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Polls for changes made outside this process. */
  start(): void {
    if (this.timer || this.options.refreshMs <= 0) return;
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async refresh(): Promise<void> {
    try {
      if ((await this.repository.fingerprint()) !== this.fingerprint) await this.load();
    } catch (error) {
      this.options.onStorageError?.(error);
    }
  }

  /** The key for a secret's hash: synchronous on a hit, one deduplicated database read on a miss. */
  lookup(hash: string): AppKey | undefined | Promise<AppKey | undefined> {
    const hit = this.byHash.get(hash);
    if (hit !== undefined) return hit;
    const unknownUntil = this.unknown.get(hash);
    if (unknownUntil !== undefined && unknownUntil > Date.now()) return undefined;
    let pending = this.pending.get(hash);
    if (!pending) {
      const generation = this.generation;
      pending = this.repository.findByHash(hash).then(
        (row) => {
          this.pending.delete(hash);
          // A load or reload ran while this read was out: it knows better, keep nothing.
          if (generation !== this.generation) return this.byHash.get(hash) ?? (row === undefined ? undefined : toAppKey(row));
          if (!row) {
            if (this.unknown.size >= NEGATIVE_CACHE_LIMIT) this.unknown.clear();
            this.unknown.set(hash, Date.now() + this.negativeTtlMs);
            return undefined;
          }
          const key = toAppKey(row);
          this.byHash.set(hash, key);
          this.remember(key);
          return key;
        },
        (error: unknown) => {
          this.pending.delete(hash);
          throw error;
        },
      );
      this.pending.set(hash, pending);
    }
    return pending;
  }

  /**
   * The key with this id as loaded now: a background response's usage is charged to its creator
   * by id. A scan, as it runs once per background response, never per request.
   */
  byId(id: string): AppKey | undefined {
    for (const key of this.byHash.values()) if (key.id === id) return key;
    return undefined;
  }

  /** Every origin some key allows, for answering preflights (which carry no key). */
  readonly origins = {
    has: (origin: string): boolean => this.originSet.has(origin),
  };
  private originSet = new Set<string>();

  private remember(key: AppKey): void {
    for (const origin of key.allowOrigin ?? []) this.originSet.add(origin);
  }
}
