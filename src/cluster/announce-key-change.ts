import type { Config } from '../config/index.js';
import { publishOnce } from '../storage/redis-publish-once.js';
import { encodeKeyChange, KEYS_CHANNEL, newInstanceId } from './messages.js';

/**
 * Tells the running gateways that key `id` changed, for a process that wrote the database itself
 * (the CLI) and whose config names a `redis_url`. Never fails the command: with Redis down it
 * warns, and the gateways' poll picks the change up within seconds.
 */
export async function announceKeyChange(config: Config, id: string, warn: (text: string) => void): Promise<void> {
  if (config.redis.url === '') return;
  try {
    await publishOnce(config.redis.url, config.redis.prefix, KEYS_CHANNEL, encodeKeyChange({ from: `cli-${newInstanceId()}`, id }));
  } catch (error) {
    // ioredis's messages name the address, never the URL's password.
    warn(`warning: the running gateways were not told through Redis (${(error as Error).message}); they pick the change up within a few seconds\n`);
  }
}
