import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../observability/logger.js';

/** A command that has not answered in this long fails: Redis down or stalled must never hang a request. */
const COMMAND_TIMEOUT_MS = 1000;
const CONNECT_TIMEOUT_MS = 2000;
/** Reconnect attempts back off to this and keep going: an outage ends by itself, no restart needed. */
const MAX_RECONNECT_DELAY_MS = 2000;

export interface RedisConnectionOptions {
  logger: Logger;
  /** Put before every key (ioredis `keyPrefix`) and every channel name. */
  prefix: string;
  /** Overrides for tests (a shorter command timeout, say). */
  commandTimeoutMs?: number;
}

/**
 * The Redis every instance shares (`redis_url`). One command connection with no offline queue:
 * while Redis is unreachable a command fails at once instead of waiting for a reconnect, and one
 * that gets no answer fails after `commandTimeoutMs`; callers decide what failing means (the
 * `fail_open` rule). Pub/sub gets a connection of its own, made on first use, that resubscribes
 * after reconnects.
 */
export class SharedRedis {
  /** Commands; keys are written without the prefix, ioredis adds it. Lua scripts see prefixed KEYS. */
  readonly client: Redis;
  readonly prefix: string;
  private subscriber: Redis | undefined;
  private readonly handlers = new Map<string, Set<(message: string) => void>>();
  private readonly healthListeners = new Set<(healthy: boolean) => void>();
  private up = false;
  /** Whether an outage was already logged: one line per outage, not one per reconnect attempt. */
  private downLogged = false;
  private closed = false;

  constructor(url: string, private readonly options: RedisConnectionOptions) {
    this.prefix = options.prefix;
    // Auto-pipelining: the commands of one event-loop turn (many requests' admissions under load) go in one write.
    this.client = new Redis(url, this.connectionOptions({ enableOfflineQueue: false, enableAutoPipelining: true, keyPrefix: options.prefix }));
    this.client.on('ready', () => this.setHealthy(true));
    this.client.on('end', () => this.setHealthy(false));
    this.client.on('close', () => this.setHealthy(false));
    this.client.on('error', (error: Error) => this.noteError(error));
  }

  /** Whether the command connection is up right now. */
  get healthy(): boolean {
    return this.up;
  }

  /** Resolves when the first connection is ready, or false after `timeoutMs` (Redis down at start: the instance starts anyway). */
  async ready(timeoutMs = CONNECT_TIMEOUT_MS): Promise<boolean> {
    if (this.up) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.healthListeners.delete(listener);
        resolve(false);
      }, timeoutMs);
      const listener = (healthy: boolean): void => {
        if (!healthy) return;
        clearTimeout(timer);
        this.healthListeners.delete(listener);
        resolve(true);
      };
      this.healthListeners.add(listener);
    });
  }

  /** Called with `true` when the connection comes (back) up and `false` when it is lost. */
  onHealthChange(listener: (healthy: boolean) => void): () => void {
    this.healthListeners.add(listener);
    return () => this.healthListeners.delete(listener);
  }

  /** Publishes on `prefix + channel`; rejects when Redis is unreachable. */
  async publish(channel: string, message: string): Promise<void> {
    await this.client.publish(this.prefix + channel, message);
  }

  /**
   * Calls `handler` with every message published on `prefix + channel`, from this instance too.
   * Messages published while the subscriber connection was down are lost: listen to
   * onHealthChange(true) to catch up from the source of truth.
   */
  async subscribe(channel: string, handler: (message: string) => void): Promise<void> {
    const name = this.prefix + channel;
    let set = this.handlers.get(name);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(name, set);
    }
    set.add(handler);
    if (this.subscriber === undefined) {
      // Queues SUBSCRIBE until connected and resubscribes after a reconnect (ioredis autoResubscribe).
      const subscriber = new Redis(this.subscriberOptions());
      subscriber.on('error', (error: Error) => this.noteError(error));
      subscriber.on('message', (from: string, message: string) => {
        for (const each of this.handlers.get(from) ?? []) {
          try {
            each(message);
          } catch (error) {
            this.options.logger.error({ err: (error as Error).message, channel: from }, 'redis message handler failed');
          }
        }
      });
      this.subscriber = subscriber;
    }
    if (set.size === 1) await this.subscriber.subscribe(name);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([quit(this.client), this.subscriber && quit(this.subscriber)]);
  }

  private subscriberOptions(): RedisOptions {
    // The command connection's own options (host, port, password, tls, db parsed from the URL),
    // without the key prefix (channels are prefixed here) and with an offline queue.
    // SUBSCRIBE waits for the connection however long it takes: no command timeout, no retry cap.
    const { keyPrefix: _prefix, commandTimeout: _timeout, ...rest } = this.client.options;
    return { ...rest, enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: false };
  }

  private connectionOptions(overrides: RedisOptions): RedisOptions {
    return {
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: this.options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS,
      // A command in flight when the connection drops fails instead of being retried later.
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt: number) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
      ...overrides,
    };
  }

  private setHealthy(healthy: boolean): void {
    if (this.up === healthy) return;
    this.up = healthy;
    if (healthy) {
      if (this.downLogged) this.options.logger.info('redis reachable again');
      this.downLogged = false;
    } else if (!this.closed) {
      this.logDown('connection lost');
    }
    for (const listener of [...this.healthListeners]) listener(healthy);
  }

  private noteError(error: Error): void {
    if (this.closed) return;
    this.logDown(error.message);
  }

  private logDown(reason: string): void {
    if (this.downLogged) return;
    this.downLogged = true;
    // ioredis's messages name the address and the failure, never the URL's password.
    this.options.logger.error({ err: reason }, 'redis unreachable; until it recovers, shared limits follow fail_open, key changes come by the poll and the cache misses');
  }
}

async function quit(connection: Redis): Promise<void> {
  // QUIT would wait in the offline queue (the subscriber's) for a connection that may never come.
  if (connection.status !== 'ready') {
    connection.disconnect();
    return;
  }
  try {
    await connection.quit();
  } catch {
    connection.disconnect();
  }
}

/** The shared Redis named by `url`, connecting in the background. */
export function openRedis(url: string, options: RedisConnectionOptions): SharedRedis {
  return new SharedRedis(url, options);
}
