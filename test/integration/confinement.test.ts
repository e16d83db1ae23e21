import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { storageBackends, type TestDatabase } from '../helpers/databases.js';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ADMIN = 'admin-token-confinement-0123456789';
const ACCESS = 'owner-access-token-confinement';
const UPSTREAM_KEY = 'sk-upstream-confinement-0123456789';

interface Answer {
  status: number;
  json: Record<string, unknown> | undefined;
  text: string;
  headers: Headers;
}

/**
 * An app key confined to what its owner allowed, tried the way a holder of a restricted key would
 * try to escape it (issue 10): other path spellings, other content types, other keys' object ids,
 * model names that hide elsewhere in the body, aborts. The fake upstream keeps objects per
 * account; every app key shares the one upstream account, so only the gateway keeps them apart.
 */
for (const backend of storageBackends()) {
  describe(`tenant confinement on ${backend.name}`, () => {
    let upstream: FakeUpstream;
    let database: TestDatabase;
    let gateway: TestGateway;
    const keys: Record<string, string> = {};

    const admin = async (method: string, path: string, body?: unknown): Promise<Answer> => {
      const response = await fetch(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
      return answerOf(response);
    };
    const call = async (key: string, method: string, path: string, body?: string | FormData | Uint8Array, headers: Record<string, string> = {}): Promise<Answer> => {
      const response = await fetch(`${gateway.url}${path}`, { method, headers: { authorization: `Bearer ${key}`, ...headers }, body });
      return answerOf(response);
    };
    const json = (key: string, method: string, path: string, body: unknown, contentType = 'application/json') => call(key, method, path, JSON.stringify(body), contentType === '' ? {} : { 'content-type': contentType });
    const sdk = (key: string) => new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    const records = async () => {
      await gateway.gateway.writer.flush();
      return database.db.selectFrom('usage_records').selectAll().orderBy('id').execute();
    };
    const recordOf = async (answer: Answer) => {
      const id = answer.headers.get('x-request-id');
      for (let i = 0; i < 50; i++) {
        const row = (await records()).find((record) => record.request_id === id);
        if (row) return row;
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
      throw new Error(`no usage record for ${id}`);
    };

    before(async () => {
      upstream = await FakeUpstream.start();
      database = await backend.open();
      gateway = await startTestGateway({ BASE_URL: upstream.url, APIKEY: UPSTREAM_KEY, ACCESS_TOKEN: ACCESS, ADMIN_TOKEN: ADMIN, DATABASE_URL: database.url, MAX_ATTEMPTS: '1' });
      const create = async (attributes: Record<string, unknown>): Promise<string> => {
        const created = await admin('POST', '/admin/keys', attributes);
        assert.equal(created.status, 201, created.text);
        return created.json!.key as string;
      };
      keys.mini = await create({ name: 'mini', models: ['gpt-4o-mini', 'whisper-1', 'gpt-realtime-mini', 'dall-e-2'] });
      keys.alice = await create({ name: 'alice' });
      keys.bob = await create({ name: 'bob' });
      keys.budget = await create({ name: 'budget', budget_usd: 5, models: ['gpt-4o-mini', 'unpriced-model'] });
      keys.nothing = await create({ name: 'nothing', models: [] });
      keys.persona = await create({ name: 'persona', bot_desc: 'You are a pirate.' });
      keys.granted = await create({ name: 'granted', models: ['gpt-4o-mini'], endpoints: ['POST /v1/evals', 'POST /v1/realtime/transcription_sessions'] });
    });
    after(async () => {
      await gateway.close();
      await database.cleanup();
      await upstream.close();
    });
    beforeEach(() => upstream.reset());

    describe('models in every body shape (attack 2)', () => {
      for (const contentType of ['text/plain', '', 'application/x-www-form-urlencoded']) {
        it(`checks the model of a JSON body sent as "${contentType || 'no content type'}"`, async () => {
          const refused = await json(keys.mini!, 'POST', '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }, contentType);
          assert.equal(refused.status, 403, refused.text);
          assert.equal((refused.json!.error as { code: string }).code, 'model_not_allowed');
          assert.equal(upstream.requests.length, 0, 'nothing reached the upstream');

          const allowed = await json(keys.mini!, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, contentType);
          assert.equal(allowed.status, 200, allowed.text);
          assert.equal(upstream.last().headers['content-type'], 'application/json', 'forwarded as the JSON it was read as');
          const record = await recordOf(allowed);
          assert.equal(record.model, 'gpt-4o-mini');
          assert.equal(record.total_tokens, 17, 'metered like any chat');
        });
      }

      it('refuses a body that is not JSON on a JSON endpoint, naming the endpoint', async () => {
        const refused = await call(keys.mini!, 'POST', '/v1/chat/completions', 'model=gpt-4o', { 'content-type': 'text/plain' });
        assert.equal(refused.status, 400);
        assert.equal((refused.json!.error as { code: string }).code, 'invalid_json');
        assert.match((refused.json!.error as { message: string }).message, /POST \/v1\/chat\/completions is not valid JSON/);
      });

      it('forwards exactly the body it checked when a restricted key repeats "model" or escapes its name', async () => {
        const body = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"model":"gpt-4o-mini"}';
        const answer = await call(keys.mini!, 'POST', '/v1/chat/completions', body, { 'content-type': 'application/json' });
        assert.equal(answer.status, 200, answer.text);
        const sent = upstream.last().body.toString('utf8');
        assert.equal((sent.match(/"model"/g) ?? []).length, 1, 'one model field reaches the upstream');
        assert.equal(upstream.last().json!.model, 'gpt-4o-mini');

        const escaped = await call(keys.mini!, 'POST', '/v1/chat/completions', '{"mod\\u0065l":"gpt-4o","messages":[]}', { 'content-type': 'application/json' });
        assert.equal(escaped.status, 403, escaped.text);
      });

      it('reads the model field of a multipart upload, before or after the file', async () => {
        for (const order of ['file-first', 'model-first']) {
          const form = new FormData();
          if (order === 'model-first') form.append('model', 'gpt-4o-transcribe');
          form.append('file', new Blob([new Uint8Array(256 * 1024).fill(7)]), 'speech.mp3');
          if (order === 'file-first') form.append('model', 'gpt-4o-transcribe');
          const refused = await call(keys.mini!, 'POST', '/v1/audio/transcriptions', form);
          assert.equal(refused.status, 403, `${order}: ${refused.text}`);
          assert.equal(upstream.requests.length, 0);
        }
        const form = new FormData();
        form.append('file', new Blob([new Uint8Array(128 * 1024).fill(9)]), 'speech.mp3');
        form.append('model', 'whisper-1');
        const request = new Request('http://x/', { method: 'POST', body: form });
        const bytes = new Uint8Array(await request.arrayBuffer());
        const allowed = await call(keys.mini!, 'POST', '/v1/audio/transcriptions', bytes, { 'content-type': request.headers.get('content-type')! });
        assert.equal(allowed.status, 200, allowed.text);
        assert.ok(upstream.last().body.equals(Buffer.from(bytes)), 'the upload reached the upstream byte for byte');
        assert.equal((await recordOf(allowed)).model, 'whisper-1');
      });

      it('refuses a multipart body with two model fields', async () => {
        const form = new FormData();
        form.append('model', 'whisper-1');
        form.append('file', new Blob(['x']), 'a.mp3');
        form.append('model', 'gpt-4o-transcribe');
        const refused = await call(keys.mini!, 'POST', '/v1/audio/transcriptions', form);
        assert.equal(refused.status, 400, refused.text);
        assert.equal(upstream.requests.length, 0);
      });

      it('checks session.model of a realtime client secret, and refuses the endpoint to a budget key', async () => {
        const refused = await json(keys.mini!, 'POST', '/v1/realtime/client_secrets', { session: { type: 'realtime', model: 'gpt-realtime' } });
        assert.equal(refused.status, 403, refused.text);
        assert.equal((refused.json!.error as { code: string }).code, 'model_not_allowed');
        const missing = await json(keys.mini!, 'POST', '/v1/realtime/client_secrets', { session: { type: 'realtime' } });
        assert.equal(missing.status, 400, 'the upstream would choose the model itself');
        const budget = await json(keys.budget!, 'POST', '/v1/realtime/client_secrets', { session: { type: 'realtime', model: 'gpt-4o-mini' } });
        assert.equal(budget.status, 403);
        assert.equal((budget.json!.error as { code: string }).code, 'endpoint_not_allowed');
        assert.match((budget.json!.error as { message: string }).message, /its budget/);
        assert.equal(upstream.requests.length, 0);
      });

      it('checks the default model of an endpoint that picks one when none is sent', async () => {
        const refused = await json(keys.mini!, 'POST', '/v1/moderations', { input: 'hello' });
        assert.equal(refused.status, 403, 'omni-moderation-latest is not on the key');
        const images = await json(keys.mini!, 'POST', '/v1/images/generations', { prompt: 'a cat' });
        assert.notEqual(images.status, 403, 'dall-e-2 is on the key');
      });

      it('refuses model names longer than 256 bytes before they reach a log or a glob', async () => {
        const long = `gpt-${'x'.repeat(8 * 1024 * 1024)}`;
        const answer = await json(keys.mini!, 'POST', '/v1/chat/completions', { model: long, messages: [] });
        assert.equal(answer.status, 400);
        assert.match((answer.json!.error as { message: string }).message, /longer than 256 bytes/);
        const unrestricted = await json(ACCESS, 'POST', '/v1/chat/completions', { model: `${'é'.repeat(200)}`, messages: [] });
        assert.equal(unrestricted.status, 400, '400 bytes of UTF-8 in 200 characters');
        assert.ok(!gateway.logText().includes('x'.repeat(1000)), 'the name is in no log line');
        assert.equal(upstream.requests.length, 0);
      });
    });

    describe('one canonical path (attack 3, 4)', () => {
      for (const path of ['/v1//chat/completions', '/v1/chat/%63ompletions', '/v1/chat/completions/', '/%761/chat/completions', '/v1/%63hat//%63ompletions']) {
        it(`classifies and forwards ${path} as chat completions`, async () => {
          const refused = await json(keys.mini!, 'POST', path, { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
          assert.equal(refused.status, 403, refused.text);
          const allowed = await json(keys.mini!, 'POST', path, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
          assert.equal(allowed.status, 200, allowed.text);
          assert.equal(upstream.last().url, '/v1/chat/completions');
          assert.equal((await recordOf(allowed)).total_tokens, 17);
        });
      }

      it('forwards /%761/files as /v1/files', async () => {
        const answer = await call(ACCESS, 'GET', '/%761/files');
        assert.equal(answer.status, 200, answer.text);
        assert.equal(upstream.last().path, '/v1/files');
      });

      for (const path of ['/v1/files/%2e%2e/models', '/v1/files/..%2Fmodels', '/v1/files%2F..', '/v1/files\\..\\models', '/v1/files/./x', '/v1/files/%00']) {
        it(`refuses ${path}`, async () => {
          // Sent as written: fetch() would resolve the dot segments before they left the client.
          const answer = await rawRequest(gateway.url, 'GET', path, ACCESS);
          assert.equal(answer.status, 400, answer.text);
          assert.equal(upstream.requests.length, 0);
        });
      }

      it('answers a WebSocket upgrade 426 (clients fall back to HTTP) when the upstream has no WebSocket, never relaying it as a GET', async () => {
        // This fake upstream has no WebSockets: it answers the gateway's handshake as a plain GET (a list of stored responses).
        for (const [key, path] of [[ACCESS, '/v1/responses'], [keys.alice!, '/v1/responses'], [ACCESS, '/v1/realtime?model=gpt-realtime'], [ACCESS, '/v1/chat/completions']] as const) {
          const answer = await rawRequest(gateway.url, 'GET', path, key, { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'openai-beta': 'responses_websockets=2026-02-06' });
          assert.equal(answer.status, 426, `${path}: ${answer.text}`);
          assert.match(answer.text, /upgrade_required/);
          assert.doesNotMatch(answer.text, /"object":\s*"list"/);
        }
        assert.ok(upstream.requests.every((request) => request.headers.upgrade === 'websocket'), 'the upstream saw only WebSocket handshakes, never a plain GET from the gateway');
      });

      it('never lets a caller choose an Azure deployment or another upstream layout', async () => {
        for (const path of ['/v1/deployments/gpt-4o/chat/completions', '/v1/openai/deployments/x/chat/completions', '/v1/engines/davinci/completions']) {
          for (const key of [ACCESS, keys.mini!]) {
            const answer = await json(key, 'POST', path, { messages: [{ role: 'user', content: 'hi' }] });
            assert.equal(answer.status, 404, `${path}: ${answer.text}`);
          }
        }
        assert.equal(upstream.requests.length, 0);
      });
    });

    describe('the endpoint table', () => {
      it('refuses an unknown endpoint to an app key, allows it to the owner and to a key granted it', async () => {
        const refused = await json(keys.alice!, 'POST', '/v1/evals', { name: 'e' });
        assert.equal(refused.status, 403);
        assert.equal((refused.json!.error as { code: string }).code, 'endpoint_not_allowed');
        assert.match((refused.json!.error as { message: string }).message, /"endpoints"/);
        assert.equal(upstream.requests.length, 0);
        assert.equal((await json(ACCESS, 'POST', '/v1/evals', { name: 'e' })).status, 404, 'relayed: the fake has no evals');
        assert.equal((await json(keys.granted!, 'POST', '/v1/evals', { name: 'e' })).status, 404, 'relayed for the granted key');
        assert.equal(upstream.requests.length, 2);
      });

      it('refuses an endpoint where the key\'s model list cannot hold, unless granted', async () => {
        const refused = await json(keys.mini!, 'POST', '/v1/realtime/transcription_sessions', {});
        assert.equal(refused.status, 403);
        assert.match((refused.json!.error as { message: string }).message, /its model list/);
        assert.notEqual((await json(keys.granted!, 'POST', '/v1/realtime/transcription_sessions', {})).status, 403);
      });

      it('refuses legacy completions to a key with a persona (they have no system message to hold it)', async () => {
        const refused = await json(keys.persona!, 'POST', '/v1/completions', { model: 'gpt-3.5-turbo-instruct', prompt: 'hi' });
        assert.equal(refused.status, 403, refused.text);
        assert.match((refused.json!.error as { message: string }).message, /its persona/);
        const chat = await json(keys.persona!, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(chat.status, 200);
        assert.deepEqual((upstream.last().json!.messages as unknown[])[0], { role: 'system', content: 'You are a pirate.' });
      });

      it('admits background responses to a budget key: their usage is metered once seen (responses-http.test.ts)', async () => {
        const admitted = await json(keys.budget!, 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'hi', background: true });
        assert.equal(admitted.status, 200, admitted.text);
        assert.equal(admitted.json!.status, 'queued');
        assert.equal(upstream.requests.length, 1);
      });

      it('refuses an unpriced model to a USD-budget key (attack 7)', async () => {
        const refused = await json(keys.budget!, 'POST', '/v1/chat/completions', { model: 'unpriced-model', messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(refused.status, 403, refused.text);
        assert.equal((refused.json!.error as { code: string }).code, 'model_not_priced');
        assert.match((refused.json!.error as { message: string }).message, /prices/);
        assert.equal((await json(keys.budget!, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).status, 200);
      });

      it('allows no model to a key whose model list is empty (the CLI shows it as "none")', async () => {
        const refused = await json(keys.nothing!, 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(refused.status, 403, refused.text);
        assert.match((refused.json!.error as { message: string }).message, /allowed: none/);
        assert.deepEqual((await call(keys.nothing!, 'GET', '/v1/models')).json!.data, []);
      });

      it('lists only the models a key may use, and hides the others from GET /v1/models/{id}', async () => {
        const listed = await call(keys.mini!, 'GET', '/v1/models');
        assert.deepEqual(((listed.json!.data as Array<{ id: string }>).map((model) => model.id)), ['gpt-4o-mini']);
        assert.equal((await call(keys.mini!, 'GET', '/v1/models/gpt-4o')).status, 404);
      });
    });

    describe('object ownership (attack 5)', () => {
      it('keeps files, their content and their deletion to the key that uploaded them', async () => {
        const alice = sdk(keys.alice!);
        const bob = sdk(keys.bob!);
        const file = await alice.files.create({ file: await toFile(Buffer.from('alice secret data'), 'a.jsonl'), purpose: 'assistants' });
        const bobs = await bob.files.create({ file: await toFile(Buffer.from('bob data'), 'b.jsonl'), purpose: 'assistants' });

        assert.equal((await alice.files.retrieve(file.id)).id, file.id);
        assert.equal(await (await alice.files.content(file.id)).text(), 'alice secret data');
        await assert.rejects(bob.files.retrieve(file.id), OpenAI.NotFoundError);
        await assert.rejects(bob.files.content(file.id), OpenAI.NotFoundError);
        await assert.rejects(bob.files.delete(file.id), OpenAI.NotFoundError);
        assert.ok(upstream.objects.get(file.id), 'still there');

        const aliceList = (await call(keys.alice!, 'GET', '/v1/files')).json!.data as Array<{ id: string }>;
        const bobList = (await call(keys.bob!, 'GET', '/v1/files')).json!.data as Array<{ id: string }>;
        assert.ok(aliceList.some((item) => item.id === file.id) && !aliceList.some((item) => item.id === bobs.id));
        assert.ok(bobList.some((item) => item.id === bobs.id) && !bobList.some((item) => item.id === file.id));
        const ownerList = (await call(ACCESS, 'GET', '/v1/files')).json!.data as Array<{ id: string }>;
        assert.ok(ownerList.some((item) => item.id === file.id) && ownerList.some((item) => item.id === bobs.id), 'the owner sees every file');

        assert.equal((await alice.files.delete(file.id)).deleted, true);
        assert.equal(upstream.objects.get(file.id), undefined);
      });

      it('pages a filtered list so the SDK reaches every own object and no other', async () => {
        const alice = sdk(keys.alice!);
        const bob = sdk(keys.bob!);
        const mine: string[] = [];
        for (let i = 0; i < 5; i++) {
          mine.push((await alice.files.create({ file: await toFile(Buffer.from(`a${i}`), `a${i}.txt`), purpose: 'user_data' })).id);
          await bob.files.create({ file: await toFile(Buffer.from(`b${i}`), `b${i}.txt`), purpose: 'user_data' });
        }
        const seen: string[] = [];
        for await (const file of alice.files.list({ limit: 2, purpose: 'user_data' })) seen.push(file.id);
        assert.deepEqual([...seen].sort(), [...mine].sort());
      });

      it('keeps responses, their chaining and stored completions to their key', async () => {
        const alice = sdk(keys.alice!);
        const bob = sdk(keys.bob!);
        const first = await alice.responses.create({ model: 'gpt-4o-mini', input: 'remember 42' });
        assert.equal((await alice.responses.retrieve(first.id)).id, first.id);
        const followUp = await alice.responses.create({ model: 'gpt-4o-mini', input: 'what number?', previous_response_id: first.id });
        assert.equal(followUp.previous_response_id, first.id);
        await assert.rejects(bob.responses.retrieve(first.id), OpenAI.NotFoundError);
        await assert.rejects(bob.responses.create({ model: 'gpt-4o-mini', input: 'steal', previous_response_id: first.id }), OpenAI.NotFoundError);
        await assert.rejects(bob.responses.delete(first.id), OpenAI.NotFoundError);

        const stream = await alice.responses.create({ model: 'gpt-4o-mini', input: 'stream me', stream: true });
        let streamedId: string | undefined;
        for await (const event of stream) if (event.type === 'response.completed') streamedId = event.response.id;
        assert.ok(streamedId);
        assert.equal((await alice.responses.retrieve(streamedId)).id, streamedId, 'a streamed response is owned too');
        await assert.rejects(bob.responses.retrieve(streamedId), OpenAI.NotFoundError);

        const stored = await alice.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'keep' }], store: true });
        await assert.rejects(bob.chat.completions.retrieve(stored.id), OpenAI.NotFoundError);
        const bobStored = (await call(keys.bob!, 'GET', '/v1/chat/completions')).json!.data as Array<{ id: string }>;
        assert.ok(!bobStored.some((item) => item.id === stored.id));
        assert.equal((await alice.chat.completions.retrieve(stored.id)).id, stored.id);
      });

      it('keeps vector stores to their key and refuses another key\'s file in them', async () => {
        const alice = sdk(keys.alice!);
        const bob = sdk(keys.bob!);
        const file = await alice.files.create({ file: await toFile(Buffer.from('doc'), 'doc.txt'), purpose: 'assistants' });
        await assert.rejects(bob.vectorStores.create({ name: 'steal', file_ids: [file.id] }), OpenAI.NotFoundError);
        const store = await alice.vectorStores.create({ name: 'mine', file_ids: [file.id] });
        await assert.rejects(bob.vectorStores.retrieve(store.id), OpenAI.NotFoundError);
        const bobStore = await bob.vectorStores.create({ name: 'bob' });
        await assert.rejects(bob.vectorStores.files.create(bobStore.id, { file_id: file.id }), OpenAI.NotFoundError);
        await assert.rejects(bob.responses.create({ model: 'gpt-4o-mini', input: 'x', tools: [{ type: 'file_search', vector_store_ids: [store.id] }] }), OpenAI.NotFoundError);
        const bobStores = (await call(keys.bob!, 'GET', '/v1/vector_stores')).json!.data as Array<{ id: string }>;
        assert.deepEqual(bobStores.map((item) => item.id), [bobStore.id]);
      });

      it('checks a file named by id in JSON sent to an upload or image endpoint', async () => {
        const bobs = await sdk(keys.bob!).files.create({ file: await toFile(Buffer.from('bob only'), 'b.txt'), purpose: 'user_data' });
        upstream.script((_request, response) => {
          const body = JSON.stringify({ id: 'cntr_alice1', object: 'container', name: 'c' });
          response.writeHead(200, { 'content-type': 'application/json' }).end(body);
        });
        assert.equal((await json(keys.alice!, 'POST', '/v1/containers', { name: 'c' })).status, 200);
        const before = upstream.requests.length;
        const copy = await json(keys.alice!, 'POST', '/v1/containers/cntr_alice1/files', { file_id: bobs.id });
        assert.equal(copy.status, 404, copy.text);
        assert.equal((copy.json!.error as { code: string }).code, 'object_not_found');
        const edit = await json(keys.alice!, 'POST', '/v1/images/edits', { model: 'gpt-image-1', prompt: 'x', images: [{ file_id: bobs.id }] });
        assert.equal(edit.status, 404, edit.text);
        assert.equal(upstream.requests.length, before, 'neither reached the upstream');
        assert.equal((await json(keys.bob!, 'POST', '/v1/containers/cntr_alice1/files', { file_id: bobs.id })).status, 404, 'nor may bob use alice\'s container');
      });

      it('runs the owner\'s batch flow end to end and refuses a batch on another key\'s file', async () => {
        const alice = sdk(keys.alice!);
        const bob = sdk(keys.bob!);
        const lines = [1, 2].map((i) => JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `q${i}` }], max_tokens: 10 } }));
        const file = await alice.files.create({ file: await toFile(Buffer.from(lines.join('\n')), 'batch.jsonl'), purpose: 'batch' });
        const batch = await alice.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
        assert.equal((await alice.batches.retrieve(batch.id)).id, batch.id);
        await assert.rejects(bob.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }), OpenAI.NotFoundError);
        await assert.rejects(bob.batches.retrieve(batch.id), OpenAI.NotFoundError);
        const bobBatches = (await call(keys.bob!, 'GET', '/v1/batches')).json!.data as Array<{ id: string }>;
        assert.ok(!bobBatches.some((item) => item.id === batch.id));
      });

      it('checks every line of a batch input file against the key (attack 6)', async () => {
        const mini = sdk(keys.mini!);
        const lines = [
          { custom_id: 'ok', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } },
          { custom_id: 'escape', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] } },
        ].map((line) => JSON.stringify(line));
        const file = await mini.files.create({ file: await toFile(Buffer.from(lines.join('\n')), 'batch.jsonl'), purpose: 'batch' });
        const before = upstream.objects.count('batch');
        const refused = await json(keys.mini!, 'POST', '/v1/batches', { input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
        assert.equal(refused.status, 403, refused.text);
        assert.match((refused.json!.error as { message: string }).message, /line 2.*gpt-4o/);
        assert.equal(upstream.objects.count('batch'), before, 'no batch was created');
      });

      it('refuses batch lines for endpoints the gateway does not meter', async () => {
        const alice = sdk(keys.alice!);
        const line = JSON.stringify({ custom_id: 'img', method: 'POST', url: '/v1/images/generations', body: { model: 'dall-e-3', prompt: 'x' } });
        const file = await alice.files.create({ file: await toFile(Buffer.from(line), 'i.jsonl'), purpose: 'batch' });
        const refused = await json(keys.alice!, 'POST', '/v1/batches', { input_file_id: file.id, endpoint: '/v1/images/generations', completion_window: '24h' });
        assert.equal(refused.status, 400, refused.text);
        assert.match((refused.json!.error as { message: string }).message, /line 1/);
      });

      it('never reads owners out of a file\'s content (a key cannot claim another key\'s file by uploading its id)', async () => {
        const bobs = await sdk(keys.bob!).files.create({ file: await toFile(Buffer.from('bob private'), 'b.txt'), purpose: 'user_data' });
        const alice = sdk(keys.alice!);
        const bait = JSON.stringify({ object: 'upload', id: 'x', output_file_id: bobs.id, error_file_id: bobs.id, result_files: [bobs.id], file: { id: bobs.id } });
        const file = await alice.files.create({ file: await toFile(Buffer.from(bait), 'bait.json'), purpose: 'user_data' });
        assert.equal(await (await alice.files.content(file.id)).text(), bait);
        await assert.rejects(alice.files.content(bobs.id), OpenAI.NotFoundError);
        await assert.rejects(alice.files.retrieve(bobs.id), OpenAI.NotFoundError);
      });

      it('makes the output file of an own batch the key\'s own', async () => {
        const alice = sdk(keys.alice!);
        const line = JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
        const file = await alice.files.create({ file: await toFile(Buffer.from(line), 'o.jsonl'), purpose: 'batch' });
        const batch = await alice.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
        const done = await alice.batches.retrieve(batch.id);
        assert.ok(done.output_file_id, 'the fake completes a batch on its first retrieve');
        assert.match(await (await alice.files.content(done.output_file_id)).text(), /custom_id/);
        await assert.rejects(sdk(keys.bob!).files.content(done.output_file_id), OpenAI.NotFoundError);
      });

      it('charges a batch its estimate against a budget', async () => {
        const budget = sdk(keys.budget!);
        const line = JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 1000 } });
        const file = await budget.files.create({ file: await toFile(Buffer.from(line), 'b.jsonl'), purpose: 'batch' });
        const answer = await json(keys.budget!, 'POST', '/v1/batches', { input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
        assert.equal(answer.status, 200, answer.text);
        const record = await recordOf(answer);
        assert.equal(record.usage_source, 'estimated');
        assert.ok(record.completion_tokens === 1000 && record.prompt_tokens > 0, JSON.stringify(record));
        assert.ok((record.cost_usd ?? 0) > 0);
      });
    });

    describe('aborts (attack 10)', () => {
      it('charges a request aborted after it reached the upstream its estimate', async () => {
        let reached!: () => void;
        const arrived = new Promise<void>((resolve) => (reached = resolve));
        upstream.script((_request, response) => {
          reached();
          response.on('close', () => undefined);
        });
        const controller = new AbortController();
        const pending = fetch(`${gateway.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${keys.mini}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'a question worth some tokens' }], max_tokens: 300 }),
          signal: controller.signal,
        }).catch(() => undefined);
        await arrived;
        controller.abort();
        await pending;
        let row: Awaited<ReturnType<typeof records>>[number] | undefined;
        for (let i = 0; i < 50 && !row; i++) {
          row = (await records()).find((record) => record.status === 499 && record.key_name === 'mini');
          if (!row) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.ok(row, 'the abort is recorded');
        assert.equal(row.usage_source, 'estimated');
        assert.equal(row.completion_tokens, 300, 'the max_tokens bound');
        assert.ok(row.prompt_tokens > 0);
        assert.equal(row.aborted, 1);
      });
    });
  });
}

/** One request with its target exactly as given (no client-side URL normalisation). */
function rawRequest(base: string, method: string, path: string, key: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: url.hostname, port: url.port, method, path, headers: { authorization: `Bearer ${key}`, ...headers } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    request.on('error', reject);
    request.end();
  });
}

async function answerOf(response: Response): Promise<Answer> {
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text, headers: response.headers };
}

describe('affinity: follow-ups reach the upstream key that holds the object', () => {
  let upstream: FakeUpstream;
  let gateway: TestGateway;
  let key: string;

  before(async () => {
    upstream = await FakeUpstream.start();
    // Two upstream keys are two accounts at the fake: an object lives in one of them only.
    gateway = await startTestGateway({ BASE_URL: upstream.url, APIKEY: 'sk-account-one-0123456789|sk-account-two-0123456789', ADMIN_TOKEN: ADMIN, MAX_ATTEMPTS: '1' });
    const created = await fetch(`${gateway.adminUrl}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'agent' }) });
    key = ((await created.json()) as { key: string }).key;
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
  });

  it('sends every retrieve and previous_response_id follow-up to the account that created the response', async () => {
    const client = new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    for (let turn = 0; turn < 4; turn++) {
      const first = await client.responses.create({ model: 'gpt-4o-mini', input: `start ${turn}` });
      const account = upstream.objects.get(first.id)!.account;
      for (let i = 0; i < 4; i++) {
        assert.equal((await client.responses.retrieve(first.id)).id, first.id);
        const next = await client.responses.create({ model: 'gpt-4o-mini', input: 'go on', previous_response_id: first.id });
        assert.equal(upstream.objects.get(next.id)!.account, account, 'the follow-up ran in the same account');
      }
    }
    const accounts = new Set(upstream.objects.list('response').map((stored) => stored.account));
    assert.equal(accounts.size, 2, 'new conversations are still spread over both keys');
  });
});
