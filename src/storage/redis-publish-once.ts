import { Redis } from 'ioredis';

/** The CLI's whole budget for telling the gateways: it must never hang on a Redis that is down. */
const PUBLISH_ONCE_TIMEOUT_MS = 1500;

/**
 * Publishes one message on `prefix + channel` over a connection made for it and closed after: for
 * short-lived processes (the CLI) that have no SharedRedis. No retries, no offline queue; rejects
 * when Redis cannot be reached or does not answer within `timeoutMs`.
 */
export async function publishOnce(url: string, prefix: string, channel: string, message: string, timeoutMs = PUBLISH_ONCE_TIMEOUT_MS): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // The rejection below reports the failure; without a listener ioredis would also print it.
  redis.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from Redis within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([
      (async () => {
        await redis.connect();
        await redis.publish(prefix + channel, message);
      })(),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
    redis.disconnect();
  }
}
