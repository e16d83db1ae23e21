import type { Logger } from '../observability/logger.js';
import type { SharedRedis } from '../storage/redis.js';
import { decodeKeyChange, encodeKeyChange, KEYS_CHANNEL } from './messages.js';

/** What the relay applies a change to (the KeyStore). */
export interface KeyCache {
  /** Reads one key again from the database. */
  reloadKey(id: string): Promise<void>;
  /** Reads every key again. */
  load(): Promise<void>;
  /** Reloads if the keys table changed since the last load. */
  refresh(): Promise<void>;
}

type PubSub = Pick<SharedRedis, 'publish' | 'subscribe' | 'onHealthChange'>;

/**
 * Spreads app key changes between instances through the shared Redis. The message only names the
 * key: each instance reads it from the database itself, so a forged message can make an instance
 * re-read a key, never change one. Messages lost while Redis is down are caught up by one reload
 * when it is back, and by KeyStore's fingerprint poll in any case.
 */
export class KeyChangeRelay {
  private publishFailed = false;

  constructor(
    private readonly redis: PubSub,
    private readonly keys: KeyCache,
    private readonly logger: Logger,
    private readonly instanceId: string,
  ) {}

  async start(): Promise<void> {
    this.redis.onHealthChange((healthy) => {
      if (healthy) void this.keys.refresh();
    });
    await this.redis.subscribe(KEYS_CHANNEL, (message) => this.receive(message));
  }

  /** Tells the other instances that key `id` changed here; `undefined`: any key may have (a config reload). */
  announce(id: string | undefined): void {
    this.redis.publish(KEYS_CHANNEL, encodeKeyChange({ from: this.instanceId, id })).then(
      () => {
        this.publishFailed = false;
      },
      (error: unknown) => {
        if (this.publishFailed) return;
        this.publishFailed = true;
        this.logger.warn({ err: (error as Error).message }, 'key change not published (Redis unreachable); other instances pick it up by their poll');
      },
    );
  }

  private receive(message: string): void {
    const change = decodeKeyChange(message);
    if (change === undefined) {
      this.logger.warn({ channel: KEYS_CHANNEL, chars: message.length }, 'ignored a malformed message on the shared Redis');
      return;
    }
    if (change.from === this.instanceId) return;
    const applied = change.id === undefined ? this.keys.load() : this.keys.reloadKey(change.id);
    applied.catch((error: unknown) => {
      this.logger.warn({ err: (error as Error).message, keyId: change.id }, 'key change from another instance not applied (database read failed); the poll retries');
    });
  }
}
