import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { RedisStore } from '../../src/cache/redis-store.js';
import { createLogger } from '../../src/observability/logger.js';
import { openRedis, type SharedRedis } from '../../src/storage/redis.js';

/**
 * A Redis that completes the client's ready check (INFO) and then never answers again: a stalled
 * server, which a connection error would not show.
 */
async function stalledRedis(): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let ready = false;
    socket.on('data', (data) => {
      if (ready) return;
      // CLIENT SETINFO (OK) until the ready check's INFO, answered "not loading"; then silence.
      for (const command of data.toString().split(/(?=\*\d+\r\n)/)) {
        if (!/\binfo\r\n$/i.test(command)) {
          socket.write('+OK\r\n');
          continue;
        }
        ready = true;
        const info = 'loading:0\r\n';
        socket.write(`$${info.length}\r\n${info}\r\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

describe('RedisStore', () => {
  let stalled: Awaited<ReturnType<typeof stalledRedis>>;
  let redis: SharedRedis;

  before(async () => {
    stalled = await stalledRedis();
    redis = openRedis(`redis://127.0.0.1:${stalled.port}`, { logger: createLogger('silent'), prefix: 'stalled:', commandTimeoutMs: 30_000 });
    assert.ok(await redis.ready(5_000), 'the fake passed the ready check');
  });
  after(async () => {
    redis.client.disconnect();
    for (const socket of stalled.sockets) socket.destroy();
    await new Promise((resolve) => stalled.server.close(resolve));
  });

  it('reads a stalled Redis as a miss within its read deadline, and writes to it without waiting', async () => {
    const store = new RedisStore(redis, 100);
    const started = performance.now();
    store.set('k', { contentType: 'application/json', body: Buffer.from('{}'), usage: undefined, storedAt: Date.now() }, 60_000);
    assert.equal(await store.get('k'), undefined);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 90, `waited for the deadline (${elapsed} ms)`);
    // The connection's own command timeout is 30 s here: only the store's deadline can have ended the read.
    assert.ok(elapsed < 10_000, `did not wait for Redis (${elapsed} ms)`);
  });
});
