import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openDatabase } from '../../src/storage/database.js';
import { chatStreamEvents, FakeUpstream, sendSse } from '../helpers/fake-upstream.js';
import { spawnGateway, startTestGateway } from '../helpers/gateway.js';
import { tempConfigDir } from '../helpers/temp-config.js';

const TOKEN = 'shutdown-token';
const ADMIN = 'shutdown-admin-token-0123456';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function streamRequest(url: string): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o-mini', messages: [], stream: true }) });
}

describe('graceful shutdown', () => {
  it('lets streams in flight finish, refuses new connections, flushes usage and exits 0', async () => {
    const upstream = await FakeUpstream.start();
    upstream.script((request, response) => sendSse(response, chatStreamEvents('gpt-4o-mini', 'one two three four five', true), { delayMs: 150 }), 2);
    const dir = tempConfigDir();
    const file = join(dir, 'usage.sqlite');
    const gateway = await spawnGateway({ cwd: dir, env: { BASE_URL: upstream.url, ACCESS_TOKEN: TOKEN, DATABASE_URL: `sqlite:${file}`, USAGE_FLUSH_INTERVAL: '60', DRAIN_TIMEOUT: '10' } });
    try {
      const streams = await Promise.all([streamRequest(gateway.url), streamRequest(gateway.url)]);
      const bodies = streams.map((response) => response.text());
      await sleep(100);
      gateway.child.kill('SIGTERM');
      await sleep(100);
      await assert.rejects(fetch(`${gateway.url}/healthz`), 'no new connections while draining');
      const texts = await Promise.all(bodies);
      for (const text of texts) {
        assert.ok(text.endsWith('data: [DONE]\n\n'), 'the stream finished normally');
        assert.ok(text.includes('"content":"five"'));
      }
      assert.equal((await gateway.exited).code, 0);
      const database = await openDatabase(`sqlite:${file}`);
      const rows = await database.db.selectFrom('usage_records').select(['status', 'usage_source']).execute();
      await database.close();
      assert.equal(rows.length, 2);
      assert.ok(rows.every((r) => r.status === 200 && r.usage_source === 'upstream'));
    } finally {
      gateway.child.kill('SIGKILL');
      await upstream.close();
    }
  });

  it('ends streams still running after drain_timeout with an error event, and records them', async () => {
    const upstream = await FakeUpstream.start();
    upstream.script((request, response) => sendSse(response, chatStreamEvents('gpt-4o-mini', 'a b c d e f g h i j k l m n o p q r s t u v w x y z', true), { delayMs: 200 }));
    const dir = tempConfigDir();
    const file = join(dir, 'usage.sqlite');
    const gateway = await spawnGateway({ cwd: dir, env: { BASE_URL: upstream.url, ACCESS_TOKEN: TOKEN, DATABASE_URL: `sqlite:${file}`, DRAIN_TIMEOUT: '0.5' } });
    try {
      const response = await streamRequest(gateway.url);
      const body = response.text();
      await sleep(300);
      const stoppedAt = Date.now();
      gateway.child.kill('SIGTERM');
      const text = await body;
      assert.ok(Date.now() - stoppedAt < 3000);
      assert.match(text, /data: \{"error":\{"message":"The gateway is shutting down[^"]*","type":"server_error","param":null,"code":"shutting_down"\}\}\n\n$/);
      assert.equal((await gateway.exited).code, 0);
      const database = await openDatabase(`sqlite:${file}`);
      const rows = await database.db.selectFrom('usage_records').select(['status', 'error_code', 'usage_source', 'completion_tokens']).execute();
      await database.close();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.error_code, 'shutting_down');
      assert.equal(rows[0]!.usage_source, 'estimated', 'the text produced before the cut is counted');
      assert.ok(Number(rows[0]!.completion_tokens) > 0);
    } finally {
      gateway.child.kill('SIGKILL');
      await upstream.close();
    }
  });
});

describe('reload', () => {
  it('applies a new config.json through the admin API without dropping a stream, and refuses a bad one', async () => {
    const upstream = await FakeUpstream.start();
    const other = await FakeUpstream.start();
    const gateway = await startTestGateway({ ACCESS_TOKEN: TOKEN, ADMIN_TOKEN: ADMIN }, { base_url: upstream.url, model_alias: { fast: 'gpt-4o-mini' } });
    const reload = () => fetch(`${gateway.adminUrl}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    try {
      upstream.script((request, response) => sendSse(response, chatStreamEvents('gpt-4o-mini', 'slow stream across a reload', true), { delayMs: 100 }));
      const inFlight = streamRequest(gateway.url).then((response) => response.text());
      await sleep(150);

      writeFileSync(join(gateway.cwd, 'config.json'), JSON.stringify({ base_url: other.url, model_alias: { fast: 'gpt-4o' }, keys: [{ name: 'added', key: 'added-by-reload-0123456789' }] }));
      const applied = await reload();
      assert.equal(applied.status, 200);
      assert.deepEqual(await applied.json(), { ok: true, needs_restart: [] });

      assert.ok((await inFlight).endsWith('data: [DONE]\n\n'), 'the stream begun before the reload finished');
      const after = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer added-by-reload-0123456789', 'content-type': 'application/json' }, body: '{"model":"fast","messages":[]}' });
      assert.equal(after.status, 200, 'a key added in config.json works after the reload');
      assert.equal(other.last().json?.model, 'gpt-4o', 'new upstream and new alias');

      writeFileSync(join(gateway.cwd, 'config.json'), '{"temprature": 0.5}');
      const refused = await reload();
      assert.equal(refused.status, 400);
      const { error } = (await refused.json()) as { error: { message: string; type: string; param: null; code: string } };
      assert.deepEqual([error.code, error.type, error.param], ['reload_refused', 'invalid_request_error', null], 'admin errors are rendered like /v1 errors');
      assert.match(error.message, /did you mean "temperature"/);
      const still = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"model":"fast","messages":[]}' });
      assert.equal(still.status, 200, 'the previous configuration keeps serving');
      assert.equal(other.last().json?.model, 'gpt-4o');
    } finally {
      await gateway.close();
      await upstream.close();
      await other.close();
    }
  });

  it('re-reads config on SIGHUP and logs a refused config', async () => {
    const upstream = await FakeUpstream.start();
    const dir = tempConfigDir({ base_url: upstream.url, access_token: TOKEN, host: '127.0.0.1', port: 0, database_url: 'sqlite::memory:' });
    const gateway = await spawnGateway({ cwd: dir });
    try {
      const call = () => fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: 'Bearer rotated-token', 'content-type': 'application/json' }, body: '{"prompt":"hi"}' }).then((r) => r.json() as Promise<{ code: number }>);
      assert.equal((await call()).code, 401);
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ base_url: upstream.url, access_token: 'rotated-token', host: '127.0.0.1', port: 0, database_url: 'sqlite::memory:' }));
      gateway.child.kill('SIGHUP');
      let code = 401;
      for (let i = 0; i < 50 && code !== 200; i++) {
        await sleep(50);
        code = (await call()).code;
      }
      assert.equal(code, 200);
      // Log lines are written in batches (at least every 250 ms).
      for (let i = 0; i < 40 && !/"settings":\["host \/ port"\]|configuration reloaded/.test(gateway.stdout()); i++) await sleep(50);
      assert.match(gateway.stdout(), /"settings":\["host \/ port"\]|configuration reloaded/);
      writeFileSync(join(dir, 'config.json'), '{ broken');
      gateway.child.kill('SIGHUP');
      for (let i = 0; i < 50 && !gateway.stdout().includes('reload refused'); i++) await sleep(50);
      assert.match(gateway.stdout(), /"reason":"config error: [^"]*not valid JSON[^"]*","msg":"reload refused/);
      assert.equal((await call()).code, 200);
    } finally {
      gateway.child.kill('SIGKILL');
      await upstream.close();
    }
  });
});
