import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { storageBackends, type TestDatabase } from '../helpers/databases.js';
import { chatCompletion, chatStreamEvents, FakeUpstream, sendJson, sendSse } from '../helpers/fake-upstream.js';
import { runCli, spawnGateway, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { tempConfigDir } from '../helpers/temp-config.js';

const ADMIN = 'auth-mode-admin-token-0123456';
const TOKEN = 'auth-mode-access-token';
const MADE_UP = 'oa-madeUpKeyThatThisGatewayNeverIssued0123456';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Answer {
  status: number;
  code: string | undefined;
}

/** One /v1 chat call; `key` undefined sends no Authorization header at all. */
async function chat(gateway: { url: string }, key: string | undefined): Promise<Answer> {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] }),
  });
  const body = (await response.json()) as { error?: { code: string } };
  return { status: response.status, code: body.error?.code };
}

function admin(gateway: TestGateway) {
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const response = await fetch(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : undefined };
  };
  return {
    async createKey(name: string): Promise<string> {
      const { status, json } = await call('POST', '/admin/keys', { name });
      assert.equal(status, 201, JSON.stringify(json));
      return (json as { key: string }).key;
    },
    async deleteKey(name: string): Promise<void> {
      assert.equal((await call('DELETE', `/admin/keys/${name}`)).status, 204);
    },
    /** A refused reload answers an error in OpenAI's shape, like every admin error. */
    async reload(): Promise<{ status: number; json: { ok?: boolean; needs_restart?: string[]; error?: { message: string; code: string } } }> {
      const { status, json } = await call('POST', '/admin/reload');
      return { status, json: json as { ok?: boolean; needs_restart?: string[]; error?: { message: string; code: string } } };
    },
  };
}

/** The answers a gateway must give when it is keyed: a keyless call and a made-up key are refused before the upstream. */
async function assertKeyed(gateway: { url: string }, upstream: FakeUpstream, message: string): Promise<void> {
  const seen = upstream.requests.length;
  assert.deepEqual(await chat(gateway, undefined), { status: 401, code: 'missing_api_key' }, `${message}: no key`);
  assert.deepEqual(await chat(gateway, MADE_UP), { status: 401, code: 'invalid_api_key' }, `${message}: a made-up key`);
  assert.equal(upstream.requests.length, seen, `${message}: the upstream saw nothing`);
}

/** Waits for the gateway's key poll (every 2 s) to see a change made by the CLI. */
async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

for (const backend of storageBackends()) {
  describe(`auth mode is configuration, not a count of keys (${backend.name})`, () => {
    let upstream: FakeUpstream;
    let database: TestDatabase;
    let gateway: TestGateway | undefined;
    const cli = (...args: string[]) => runCli(args, { env: { DATABASE_URL: database.url } });
    const createKeyWithCli = async (name: string): Promise<string> => {
      const result = await cli('keys', 'create', name, '--json');
      assert.equal(result.code, 0, result.stderr);
      return (JSON.parse(result.stdout) as { key: string }).key;
    };
    const start = async (env: Record<string, string> = {}, file?: Record<string, unknown>): Promise<TestGateway> => {
      gateway = await startTestGateway({ BASE_URL: upstream.url, APIKEY: 'sk-upstream-auth-mode', ADMIN_TOKEN: ADMIN, DATABASE_URL: database.url, MAX_ATTEMPTS: '1', ...env }, file);
      return gateway;
    };

    before(async () => {
      upstream = await FakeUpstream.start();
    });
    after(() => upstream.close());
    beforeEach(async () => {
      upstream.reset();
      database = await backend.open();
    });
    const stop = async (): Promise<void> => {
      await gateway?.close();
      gateway = undefined;
      await database.cleanup();
    };

    it('with app keys only, deleting the last key through the admin API leaves a gateway that answers 401', async () => {
      try {
        const secret = await createKeyWithCli('only');
        const running = await start();
        assert.equal((await chat(running, secret)).status, 200);
        await admin(running).deleteKey('only');
        await assertKeyed(running, upstream, 'after the last key was deleted');
        assert.deepEqual(await chat(running, secret), { status: 401, code: 'invalid_api_key' }, 'the deleted key itself');
      } finally {
        await stop();
      }
    });

    it('with app keys only, deleting the last key with the CLI leaves a gateway that answers 401', async () => {
      try {
        const secret = await createKeyWithCli('only');
        const running = await start();
        assert.equal((await chat(running, secret)).status, 200);
        const deleted = await cli('keys', 'delete', 'only', '--yes');
        assert.equal(deleted.code, 0, deleted.stderr);
        await until(async () => (await chat(running, secret)).status === 401, "the gateway's key poll to drop the deleted key");
        await assertKeyed(running, upstream, 'after the CLI deleted the last key');
      } finally {
        await stop();
      }
    });

    it('an open loopback gateway closes for good when a key is created through the admin API', async () => {
      try {
        const running = await start();
        assert.deepEqual(await chat(running, undefined), { status: 200, code: undefined }, 'open: no credential configured, loopback');
        assert.equal(upstream.requests.length, 1);

        const secret = await admin(running).createKey('first');
        await assertKeyed(running, upstream, 'once a key exists');
        assert.equal((await chat(running, secret)).status, 200);

        await admin(running).deleteKey('first');
        await assertKeyed(running, upstream, 'after that key was deleted again');
      } finally {
        await stop();
      }
    });

    it('an open loopback gateway closes when the CLI creates a key, and stays closed when it is deleted', async () => {
      try {
        const running = await start();
        assert.equal((await chat(running, undefined)).status, 200);
        const secret = await createKeyWithCli('from-cli');
        await until(async () => (await chat(running, undefined)).status === 401, "the gateway's key poll to see the new key");
        assert.equal((await chat(running, secret)).status, 200);
        const deleted = await cli('keys', 'delete', 'from-cli', '--yes');
        assert.equal(deleted.code, 0, deleted.stderr);
        await until(async () => (await chat(running, secret)).status === 401, "the gateway's key poll to drop the deleted key");
        await assertKeyed(running, upstream, 'after the CLI deleted the only key');
      } finally {
        await stop();
      }
    });

    it('a reload without access_token opens a loopback gateway with no key anywhere: the owner asked for it', async () => {
      try {
        const running = await start({}, { access_token: TOKEN });
        await assertKeyed(running, upstream, 'with an access token');
        // Removing every credential from config.json on a loopback listener is the owner's explicit
        // choice of an open gateway, the same one start-up would make with this config.
        writeFileSync(join(running.cwd, 'config.json'), '{}');
        const reloaded = await admin(running).reload();
        assert.deepEqual(reloaded, { status: 200, json: { ok: true, needs_restart: [] } });
        assert.equal((await chat(running, undefined)).status, 200);
      } finally {
        await stop();
      }
    });

    it('a reload without access_token stays keyed while an app key exists in the database', async () => {
      try {
        const running = await start({}, { access_token: TOKEN });
        const secret = await admin(running).createKey('kept');
        writeFileSync(join(running.cwd, 'config.json'), '{}');
        assert.equal((await admin(running).reload()).json.ok, true);
        await assertKeyed(running, upstream, 'reloaded without access_token, an app key in the database');
        assert.deepEqual(await chat(running, TOKEN), { status: 401, code: 'invalid_api_key' }, 'the removed access token');
        assert.equal((await chat(running, secret)).status, 200);
      } finally {
        await stop();
      }
    });

    it('refuses a reload that would open a public listener, and the previous configuration keeps serving', async () => {
      try {
        const configKey = 'config-key-secret-auth-mode-0123';
        // The test helper binds loopback, but the gateway believes it listens on 0.0.0.0, as in production.
        const running = await start({ HOST: '0.0.0.0' }, { access_token: TOKEN, keys: [{ name: 'ci', key: configKey }] });
        writeFileSync(join(running.cwd, 'config.json'), '{}');
        const refused = await admin(running).reload();
        assert.equal(refused.status, 400);
        assert.equal(refused.json.error?.code, 'reload_refused');
        assert.match(refused.json.error?.message ?? '', /no access_token is set and no app key exists, so anyone who can reach 0\.0\.0\.0:\d+ could spend your API quota/);
        assert.match(refused.json.error?.message ?? '', /allow_anonymous: true/);
        await assertKeyed(running, upstream, 'after the refused reload');
        assert.equal((await chat(running, TOKEN)).status, 200, 'the previous access token still works');
        assert.equal((await chat(running, configKey)).status, 200, 'the refused reload did not delete the keys of the previous config.json');

        // A config naming a loopback host cannot open the address start-up bound: host is restart-only.
        const loopbackNext = loadConfig({ env: { HOST: '127.0.0.1', PORT: '0', DATABASE_URL: database.url }, cwd: tempConfigDir({}) });
        const direct = await running.gateway.reload(loopbackNext);
        assert.equal(direct.ok, false);
        assert.match(direct.error ?? '', /anyone who can reach 0\.0\.0\.0/);
        await assertKeyed(running, upstream, 'after the second refused reload');

        writeFileSync(join(running.cwd, 'config.json'), JSON.stringify({ allow_anonymous: true }));
        assert.equal((await admin(running).reload()).json.ok, true, 'allow_anonymous makes the open public gateway deliberate');
        assert.equal((await chat(running, undefined)).status, 200);
      } finally {
        await stop();
      }
    });
  });
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A chat call over node:http, so the test controls the keep-alive agent and sees the Connection header. */
function keepAliveChat(agent: Agent, url: string, stream = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const outgoing = request(`${url}/v1/chat/completions`, { agent, method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream }));
  });
}

const idleSockets = (agent: Agent): number => Object.values(agent.freeSockets).reduce((sum, sockets) => sum + (sockets?.length ?? 0), 0);

describe('SIGTERM with keep-alive clients', () => {
  const DRAIN_TIMEOUT_S = 20;
  let upstream: FakeUpstream;
  before(async () => {
    upstream = await FakeUpstream.start();
  });
  after(() => upstream.close());
  beforeEach(() => upstream.reset());

  const spawn = () => {
    const dir = tempConfigDir();
    return spawnGateway({ cwd: dir, env: { BASE_URL: upstream.url, ACCESS_TOKEN: TOKEN, DATABASE_URL: `sqlite:${join(dir, 'gateway.sqlite')}`, DRAIN_TIMEOUT: String(DRAIN_TIMEOUT_S) } });
  };

  it('exits at once when every keep-alive connection is idle, without waiting for drain_timeout', async () => {
    const gateway = await spawn();
    const agent = new Agent({ keepAlive: true });
    try {
      const replies = await Promise.all([1, 2, 3].map(() => keepAliveChat(agent, gateway.url)));
      for (const reply of replies) assert.equal(reply.status, 200);
      assert.equal(idleSockets(agent), 3, 'three keep-alive connections sit idle');
      const stoppedAt = Date.now();
      gateway.child.kill('SIGTERM');
      const exit = await gateway.exited;
      const took = Date.now() - stoppedAt;
      assert.equal(exit.code, 0);
      assert.ok(took < 5000, `exited ${took} ms after SIGTERM (drain_timeout is ${DRAIN_TIMEOUT_S} s)`);
      assert.doesNotMatch(gateway.stdout(), /drain timeout/);
    } finally {
      agent.destroy();
      gateway.child.kill('SIGKILL');
    }
  });

  it('exits at once beside a client that connected and never sent a request', async () => {
    const gateway = await spawn();
    const url = new URL(gateway.url);
    // Node counts such a socket as busy (its header timer runs), so server.close() alone waits for headers_timeout.
    const silent = connect({ host: url.hostname, port: Number(url.port) });
    try {
      await new Promise<void>((resolve, reject) => silent.once('connect', resolve).once('error', reject));
      const stoppedAt = Date.now();
      gateway.child.kill('SIGTERM');
      const exit = await gateway.exited;
      const took = Date.now() - stoppedAt;
      assert.equal(exit.code, 0);
      assert.ok(took < 5000, `exited ${took} ms after SIGTERM (drain_timeout is ${DRAIN_TIMEOUT_S} s)`);
      assert.doesNotMatch(gateway.stdout(), /drain timeout/);
    } finally {
      silent.destroy();
      gateway.child.kill('SIGKILL');
    }
  });

  it('finishes a request in flight with Connection: close, then exits right after it', async () => {
    const gateway = await spawn();
    const agent = new Agent({ keepAlive: true });
    const idle = new Agent({ keepAlive: true });
    try {
      assert.equal((await keepAliveChat(idle, gateway.url)).status, 200, 'an idle keep-alive connection beside it');
      upstream.script(async (_request, response) => {
        await sleep(1500);
        sendJson(response, 200, chatCompletion('gpt-4o-mini', 'slow but complete'));
      });
      const inFlight = keepAliveChat(agent, gateway.url);
      await until(async () => upstream.requests.length === 2, 'the slow request to reach the upstream');
      gateway.child.kill('SIGTERM');
      const reply = await inFlight;
      const answeredAt = Date.now();
      assert.equal(reply.status, 200);
      assert.equal(reply.headers.connection, 'close', 'the client must not reuse a socket the gateway is closing');
      assert.match(reply.body, /slow but complete/);
      const exit = await gateway.exited;
      const took = Date.now() - answeredAt;
      assert.equal(exit.code, 0);
      assert.ok(took < 3000, `exited ${took} ms after the last response (drain_timeout is ${DRAIN_TIMEOUT_S} s)`);
      assert.doesNotMatch(gateway.stdout(), /drain timeout/);
    } finally {
      agent.destroy();
      idle.destroy();
      gateway.child.kill('SIGKILL');
    }
  });

  it('exits right after a stream that began before SIGTERM ends on its keep-alive connection', async () => {
    upstream.script((_request, response) => sendSse(response, chatStreamEvents('gpt-4o-mini', 'one two three four five six', true), { delayMs: 150 }));
    const gateway = await spawn();
    const agent = new Agent({ keepAlive: true });
    try {
      const streaming = keepAliveChat(agent, gateway.url, true);
      await until(async () => upstream.requests.length === 1, 'the stream to start');
      await sleep(200);
      gateway.child.kill('SIGTERM');
      const reply = await streaming;
      const answeredAt = Date.now();
      assert.equal(reply.status, 200);
      assert.ok(reply.body.endsWith('data: [DONE]\n\n'), 'the stream finished normally');
      const exit = await gateway.exited;
      const took = Date.now() - answeredAt;
      assert.equal(exit.code, 0);
      assert.ok(took < 3000, `exited ${took} ms after the stream ended (drain_timeout is ${DRAIN_TIMEOUT_S} s)`);
      assert.doesNotMatch(gateway.stdout(), /drain timeout/);
    } finally {
      agent.destroy();
      gateway.child.kill('SIGKILL');
    }
  });
});
