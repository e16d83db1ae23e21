import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ConversationSweep } from '../../src/conversations/conversation-sweep.js';
import { countTokens, estimatePromptTokens } from '../../src/metering/token-estimate.js';
import { createLogger } from '../../src/observability/logger.js';
import { ConversationsRepository } from '../../src/storage/conversations-repository.js';
import { FakeAnthropic } from '../helpers/fake-anthropic.js';
import { chatStreamEvents, FakeUpstream, sendJson, sendSse, chatCompletion } from '../helpers/fake-upstream.js';
import { requirePostgres, storageBackends, type TestDatabase } from '../helpers/databases.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ADMIN = 'admin-token-conversations-0123456789';
const ACCESS = 'access-token-conversations-0123';
const CONFIGURED = 'oa-configured-key-for-conversations-0000';
const PERSONA = 'You are a helpful cat.';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Envelope {
  code: number;
  data: unknown;
  msg: string;
}

/** The turns of the window test, and a memory_max_tokens that holds exactly the last two. */
const WINDOW_TURNS = [
  ['Tell me about the sea, please, in some detail.', 'The sea is large, salty and deep; it covers most of the planet.'],
  ['And mountains?', 'Mountains are high.'],
  ['What about rivers?', 'Rivers run to the sea.'],
] as const;
const turnCost = ([prompt, answer]: readonly [string, string]): number => countTokens(prompt, 'gpt-4o-mini') + countTokens(answer, 'gpt-4o-mini') + 6;
const WINDOW_TOKENS = turnCost(WINDOW_TURNS[1]) + turnCost(WINDOW_TURNS[2]) + 1;

for (const backend of storageBackends()) {
  describe(`conversations through /api/chat on ${backend.name}`, () => {
    let upstream: FakeUpstream;
    let claude: FakeAnthropic;
    let database: TestDatabase;
    let gateway: TestGateway;
    const keys: Record<string, string> = {};
    const ids: Record<string, string> = {};

    const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
      const response = await fetch(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await response.text();
      return { status: response.status, json: text ? JSON.parse(text) : undefined };
    };
    const createKey = async (attributes: Record<string, unknown>): Promise<string> => {
      const { status, json } = await admin('POST', '/admin/keys', attributes);
      assert.equal(status, 201, JSON.stringify(json));
      ids[attributes.name as string] = (json as { id: string }).id;
      return (json as { key: string }).key;
    };
    const chat = async (key: string, body: unknown, signal?: AbortSignal): Promise<{ json: Envelope; requestId: string | null }> => {
      const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
      return { json: (await response.json()) as Envelope, requestId: response.headers.get('x-request-id') };
    };
    /** One turn: the fake answers `answer`; resolves with what the upstream was sent. */
    const turn = async (key: string, conversation: string, prompt: string, answer: string, extra: Record<string, unknown> = {}): Promise<unknown[]> => {
      upstream.replyText = answer;
      const before = upstream.requests.length;
      const { json } = await chat(key, { prompt, conversation_id: conversation, ...extra });
      assert.deepEqual(json, { code: 200, data: answer, msg: 'success' });
      assert.equal(upstream.requests.length, before + 1);
      return upstream.last().json!.messages as unknown[];
    };
    const conversation = async (key: string, id: string, method = 'GET'): Promise<Envelope> => {
      const response = await fetch(`${gateway.url}/api/chat/conversations/${encodeURIComponent(id)}`, { method, headers: { authorization: `Bearer ${key}` } });
      assert.equal(response.status, 200, 'the seed envelope: HTTP 200, the status inside');
      return (await response.json()) as Envelope;
    };
    const storedTurns = async (key: string, id: string): Promise<Array<[string, string]>> => {
      const found = await conversation(key, id);
      if (found.code === 404) return [];
      assert.equal(found.code, 200, JSON.stringify(found));
      return (found.data as { turns: Array<{ prompt: string; answer: string }> }).turns.map((t) => [t.prompt, t.answer]);
    };
    const user = (content: string) => ({ role: 'user', content });
    const assistant = (content: string) => ({ role: 'assistant', content });
    const system = { role: 'system', content: PERSONA };

    before(async () => {
      upstream = await FakeUpstream.start();
      claude = await FakeAnthropic.start();
      database = await backend.open();
      gateway = await startTestGateway(
        { ADMIN_TOKEN: ADMIN, ACCESS_TOKEN: ACCESS, DATABASE_URL: database.url, MAX_ATTEMPTS: '1', FIRST_BYTE_TIMEOUT: '5' },
        {
          bot_desc: PERSONA,
          keys: [{ name: 'configured', key: CONFIGURED, memory_max_turns: 1, memory_ttl: 120 }],
          upstreams: [
            { name: 'openai', type: 'openai', base_url: upstream.url, api_keys: ['sk-upstream-conversations'], models: ['gpt-*', 'o*'] },
            { name: 'claude', type: 'anthropic', base_url: claude.url, api_keys: ['sk-ant-conversations-key'], models: ['claude-*'] },
          ],
        },
      );
      keys.botA = await createKey({ name: 'bot-a' });
      keys.botB = await createKey({ name: 'bot-b' });
      keys.tight = await createKey({ name: 'tight', memory_max_tokens: WINDOW_TOKENS });
      keys.few = await createKey({ name: 'few', memory_max_turns: 2 });
      keys.brief = await createKey({ name: 'brief', memory_ttl: 2 });
      keys.mute = await createKey({ name: 'mute', memory: false });
      keys.narrow = await createKey({ name: 'narrow', models: ['gpt-4o-mini'] });
    });
    after(async () => {
      await gateway.close();
      await database.cleanup();
      await upstream.close();
      await claude.close();
    });
    beforeEach(() => {
      upstream.reset();
      claude.reset();
    });

    it('a bot dialogue: each turn sends the persona, the whole history so far and the new prompt', async () => {
      assert.deepEqual(await turn(keys.botA!, 'wx-user-1', 'Hi, I am Ann.', 'Hello Ann!'), [system, user('Hi, I am Ann.')]);
      assert.deepEqual(await turn(keys.botA!, 'wx-user-1', 'What is my name?', 'Your name is Ann.'), [system, user('Hi, I am Ann.'), assistant('Hello Ann!'), user('What is my name?')]);
      assert.deepEqual(await turn(keys.botA!, 'wx-user-1', 'Thanks.', 'You are welcome.'), [
        system,
        user('Hi, I am Ann.'),
        assistant('Hello Ann!'),
        user('What is my name?'),
        assistant('Your name is Ann.'),
        user('Thanks.'),
      ]);
      // Another conversation of the same key starts empty.
      assert.deepEqual(await turn(keys.botA!, 'wx-user-2', 'Hi.', 'Hi!'), [system, user('Hi.')]);
      assert.deepEqual(await storedTurns(keys.botA!, 'wx-user-1'), [['Hi, I am Ann.', 'Hello Ann!'], ['What is my name?', 'Your name is Ann.'], ['Thanks.', 'You are welcome.']]);
    });

    it('GET shows the caller its own conversation with the time of every turn; usage records carry the conversation id', async () => {
      const { requestId } = await chat(keys.botA!, { prompt: 'Count me.', conversation_id: 'wx-usage' });
      const found = await conversation(keys.botA!, 'wx-usage');
      assert.equal(found.code, 200);
      const data = found.data as { conversation_id: string; turns: Array<Record<string, unknown>>; expires_at: string; last_at: string };
      assert.equal(data.conversation_id, 'wx-usage');
      assert.equal(data.turns.length, 1);
      const [first] = data.turns;
      assert.equal(first!.seq, 1);
      assert.ok(Date.parse(first!.asked_at as string) <= Date.parse(first!.answered_at as string));
      assert.equal(Date.parse(data.expires_at) - Date.parse(data.last_at), 7 * 24 * 3600 * 1000, 'kept 7 days after the last message by default');
      await gateway.gateway.writer.flush();
      const row = await database.db.selectFrom('usage_records').select(['conversation_id', 'key_id', 'prompt_tokens']).where('request_id', '=', requestId!).executeTakeFirstOrThrow();
      assert.deepEqual({ conversation_id: row.conversation_id, key_id: row.key_id }, { conversation_id: 'wx-usage', key_id: ids['bot-a'] });
    });

    it('trims the history to memory_max_tokens, dropping the oldest whole turns first', async () => {
      for (const [prompt, answer] of WINDOW_TURNS) await turn(keys.tight!, 'window', prompt, answer);
      const sent = await turn(keys.tight!, 'window', 'And lakes?', 'Lakes are still.');
      const [, second, third] = WINDOW_TURNS;
      assert.deepEqual(sent, [system, user(second[0]), assistant(second[1]), user(third[0]), assistant(third[1]), user('And lakes?')]);
      // Everything is still stored (within memory_max_turns); only what is sent is trimmed.
      assert.equal((await storedTurns(keys.tight!, 'window')).length, 4);
    });

    it('per-key memory settings from config.json apply', async () => {
      await turn(CONFIGURED, 'cfg', 'q1', 'a1');
      assert.deepEqual(await turn(CONFIGURED, 'cfg', 'q2', 'a2'), [system, user('q1'), assistant('a1'), user('q2')]);
      const found = (await conversation(CONFIGURED, 'cfg')).data as { turns: Array<{ prompt: string }>; last_at: string; expires_at: string };
      assert.deepEqual(found.turns.map((t) => t.prompt), ['q2'], 'memory_max_turns 1');
      assert.equal(Date.parse(found.expires_at) - Date.parse(found.last_at), 120_000, 'memory_ttl 120');
    });

    it('remembers at most memory_max_turns turns', async () => {
      for (const n of [1, 2, 3]) await turn(keys.few!, 'few', `q${n}`, `a${n}`);
      assert.deepEqual(await turn(keys.few!, 'few', 'q4', 'a4'), [system, user('q2'), assistant('a2'), user('q3'), assistant('a3'), user('q4')]);
      assert.deepEqual(await storedTurns(keys.few!, 'few'), [['q3', 'a3'], ['q4', 'a4']]);
    });

    it('two keys never see each other’s conversations, even with the same id', async () => {
      await turn(keys.botA!, 'shared-id', 'I am A.', 'Hi A.');
      assert.deepEqual(await turn(keys.botB!, 'shared-id', 'I am B.', 'Hi B.'), [system, user('I am B.')], 'B gets none of A’s history');
      assert.deepEqual(await turn(keys.botA!, 'shared-id', 'Who am I?', 'A.'), [system, user('I am A.'), assistant('Hi A.'), user('Who am I?')]);
      assert.deepEqual(await storedTurns(keys.botB!, 'shared-id'), [['I am B.', 'Hi B.']]);
      // B cannot read or delete a conversation only A has: not found, never A's data.
      const read = await conversation(keys.botB!, 'wx-user-1');
      assert.equal(read.code, 404);
      assert.equal(read.data, null);
      assert.doesNotMatch(JSON.stringify(read), /Ann/);
      assert.equal((await conversation(keys.botB!, 'wx-user-1', 'DELETE')).code, 404);
      assert.equal((await storedTurns(keys.botA!, 'wx-user-1')).length, 3, 'A’s conversation is untouched');
      // Callers without an app key (access tokens) have the owner's own space.
      assert.deepEqual(await turn(ACCESS, 'shared-id', 'Owner here.', 'Hi owner.'), [system, user('Owner here.')]);
      assert.equal((await conversation(ACCESS, 'wx-user-1')).code, 404);
    });

    it('two messages of one conversation at once are answered in order: the second sees the first’s answer', async () => {
      let releaseFirst!: () => void;
      const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
      upstream.script(async (request, response) => {
        await firstHeld;
        sendJson(response, 200, chatCompletion(String(request.json!.model), 'first answer'));
      });
      const first = chat(keys.botA!, { prompt: 'first', conversation_id: 'race' });
      while (upstream.requests.length === 0) await sleep(10);
      upstream.replyText = 'second answer';
      const second = chat(keys.botA!, { prompt: 'second', conversation_id: 'race' });
      await sleep(200);
      assert.equal(upstream.requests.length, 1, 'the second waits while the first is under way');
      releaseFirst();
      assert.equal((await first).json.data, 'first answer');
      assert.equal((await second).json.data, 'second answer');
      assert.deepEqual(upstream.requests[1]!.json!.messages, [system, user('first'), assistant('first answer'), user('second')]);
      // Other conversations are not held up meanwhile (checked by the order being the only wait above).
      assert.deepEqual(await storedTurns(keys.botA!, 'race'), [['first', 'first answer'], ['second', 'second answer']]);
    });

    it('a failed upstream call stores nothing: the user can retry', async () => {
      await turn(keys.botA!, 'flaky', 'one', 'uno');
      upstream.failWith(500, { error: { message: 'boom', type: 'server_error' } });
      const failed = await chat(keys.botA!, { prompt: 'two', conversation_id: 'flaky' });
      assert.equal(failed.json.code, 502);
      assert.deepEqual(await storedTurns(keys.botA!, 'flaky'), [['one', 'uno']]);
      assert.deepEqual(await turn(keys.botA!, 'flaky', 'two', 'dos'), [system, user('one'), assistant('uno'), user('two')]);
      // An empty answer is passed on but not remembered.
      await turn(keys.botA!, 'flaky', 'three', '');
      assert.deepEqual(await storedTurns(keys.botA!, 'flaky'), [['one', 'uno'], ['two', 'dos']]);
    });

    it('a request refused after its history was read (model not allowed) stores nothing and lets the next turn in', async () => {
      await turn(keys.narrow!, 'refused', 'one', 'uno');
      const refused = await chat(keys.narrow!, { prompt: 'two', conversation_id: 'refused', model: 'gpt-4o' });
      assert.equal(refused.json.code, 403);
      const next = await chat(keys.narrow!, { prompt: 'three', conversation_id: 'refused' }, AbortSignal.timeout(5_000));
      assert.equal(next.json.code, 200, 'not left waiting for the refused one');
      assert.deepEqual(upstream.last().json!.messages, [system, user('one'), assistant('uno'), user('three')]);
    });

    it('a call the client aborts stores nothing, and lets the next turn in', async () => {
      upstream.script(async (request, response) => {
        await sleep(400);
        if (!response.destroyed) sendJson(response, 200, chatCompletion(String(request.json!.model), 'too late'));
      });
      const controller = new AbortController();
      const aborted = chat(keys.botA!, { prompt: 'will you wait?', conversation_id: 'gone' }, controller.signal).catch((error: unknown) => error);
      while (upstream.requests.length === 0) await sleep(10);
      controller.abort();
      assert.ok((await aborted) instanceof Error);
      await sleep(600);
      assert.deepEqual(await storedTurns(keys.botA!, 'gone'), []);
      assert.deepEqual(await turn(keys.botA!, 'gone', 'hello again', 'hi'), [system, user('hello again')]);
    });

    it('streaming: the answer is stored when the stream completes, and a cut stream stores nothing', async () => {
      upstream.replyText = 'Streamed answer here.';
      const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${keys.botA!}`, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'stream it', conversation_id: 'streamy', stream: true }) });
      const text = await response.text();
      assert.match(text, /event: done\ndata: {"code":200,"data":"Streamed answer here.","msg":"success"}/);
      assert.deepEqual(await storedTurns(keys.botA!, 'streamy'), [['stream it', 'Streamed answer here.']]);
      // Cut before [DONE]: an error event, nothing remembered.
      upstream.script((request, response) => sendSse(response, chatStreamEvents(String(request.json!.model), 'half an', false).slice(0, 2)));
      const cutResponse = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${keys.botA!}`, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'again', conversation_id: 'streamy', stream: true }) });
      assert.match(await cutResponse.text(), /event: error/);
      assert.deepEqual(await storedTurns(keys.botA!, 'streamy'), [['stream it', 'Streamed answer here.']]);
      // No usage came: the estimate charges the history as prompt tokens, like the rest of the prompt.
      const sentBody = upstream.last().json!;
      assert.equal((sentBody.messages as unknown[]).length, 4, 'persona, the stored turn and the prompt');
      await gateway.gateway.writer.flush();
      const record = await database.db.selectFrom('usage_records').select(['prompt_tokens', 'usage_source', 'conversation_id']).where('request_id', '=', cutResponse.headers.get('x-request-id')!).executeTakeFirstOrThrow();
      assert.deepEqual({ ...record, prompt_tokens: Number(record.prompt_tokens) }, { prompt_tokens: estimatePromptTokens('chat', sentBody, 'gpt-4o-mini'), usage_source: 'estimated', conversation_id: 'streamy' });
      upstream.replyText = 'ok';
      const next = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${keys.botA!}`, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'next', conversation_id: 'streamy', stream: true }) });
      await next.text();
      assert.deepEqual(upstream.last().json!.messages, [system, user('stream it'), assistant('Streamed answer here.'), user('next')]);
    });

    it('DELETE forgets a conversation (a bot’s /reset): the next turn starts afresh', async () => {
      await turn(keys.botA!, 'reset-me', 'remember 42', 'ok, 42');
      const deleted = await conversation(keys.botA!, 'reset-me', 'DELETE');
      assert.deepEqual(deleted, { code: 200, data: { conversation_id: 'reset-me', deleted: true }, msg: 'success' });
      assert.equal((await conversation(keys.botA!, 'reset-me')).code, 404);
      assert.equal((await conversation(keys.botA!, 'reset-me', 'DELETE')).code, 404, 'already gone');
      assert.deepEqual(await turn(keys.botA!, 'reset-me', 'what number?', 'which?'), [system, user('what number?')]);
    });

    it('a conversation expires memory_ttl after its last message; the sweep deletes it', async () => {
      await turn(keys.brief!, 'short-lived', 'hello', 'hi');
      assert.deepEqual(await turn(keys.brief!, 'short-lived', 'still there?', 'yes'), [system, user('hello'), assistant('hi'), user('still there?')]);
      await sleep(2_300);
      const expired = await conversation(keys.brief!, 'short-lived');
      assert.equal(expired.code, 404);
      assert.equal((expired as unknown as { msg: string }).msg.includes('short-lived'), true);
      const rows = () => database.db.selectFrom('conversation_turns').select('seq').where('key_id', '=', ids.brief!).execute();
      assert.equal((await rows()).length, 2, 'still on disk until the sweep');
      const sweep = new ConversationSweep(new ConversationsRepository(database), { logger: createLogger('silent'), pauseMs: 0 });
      assert.ok((await sweep.runOnce()) >= 1);
      assert.equal((await rows()).length, 0);
      assert.equal((await database.db.selectFrom('conversations').select('conversation_id').where('key_id', '=', ids.brief!).execute()).length, 0);
      assert.deepEqual(await turn(keys.brief!, 'short-lived', 'anyone?', 'new here'), [system, user('anyone?')]);
    });

    it('memory off for a key: no history, nothing stored, the id still recorded in usage', async () => {
      await turn(keys.mute!, 'quiet', 'one', 'uno');
      upstream.replyText = 'dos';
      const { requestId } = await chat(keys.mute!, { prompt: 'two', conversation_id: 'quiet' });
      assert.deepEqual(upstream.last().json!.messages, [system, user('two')]);
      assert.equal((await conversation(keys.mute!, 'quiet')).code, 404);
      assert.equal(await database.db.selectFrom('conversations').select('conversation_id').where('key_id', '=', ids.mute!).executeTakeFirst(), undefined);
      await gateway.gateway.writer.flush();
      const row = await database.db.selectFrom('usage_records').select('conversation_id').where('request_id', '=', requestId!).executeTakeFirstOrThrow();
      assert.equal(row.conversation_id, 'quiet');
    });

    it('history reaches an Anthropic upstream as alternating messages after the system persona', async () => {
      claude.replyText = 'Meow one.';
      const first = await chat(keys.botA!, { prompt: 'Hi cat.', conversation_id: 'claude-chat', model: 'claude-sonnet-4-5' });
      assert.equal(first.json.data, 'Meow one.');
      claude.replyText = 'Meow two.';
      await chat(keys.botA!, { prompt: 'Again?', conversation_id: 'claude-chat', model: 'claude-sonnet-4-5' });
      const sent = claude.last().json!;
      assert.equal(JSON.stringify(sent.system).includes(PERSONA), true);
      assert.deepEqual(
        (sent.messages as Array<{ role: string; content: unknown }>).map((m) => [m.role, typeof m.content === 'string' ? m.content : (m.content as Array<{ text: string }>).map((p) => p.text).join('')]),
        [['user', 'Hi cat.'], ['assistant', 'Meow one.'], ['user', 'Again?']],
      );
    });

    it('a legacy completions model gets the history folded into its prompt', async () => {
      upstream.replyText = 'Hello.';
      assert.equal((await chat(keys.botA!, { prompt: 'Hi.', conversation_id: 'legacy', model: 'gpt-3.5-turbo-instruct' })).json.data, 'Hello.');
      assert.equal(upstream.last().json!.prompt, `${PERSONA}\nHi.`, 'no history yet: the prompt as without a conversation');
      upstream.replyText = 'Fine.';
      await chat(keys.botA!, { prompt: 'How are you?', conversation_id: 'legacy', model: 'gpt-3.5-turbo-instruct' });
      assert.equal(upstream.last().path, '/v1/completions');
      assert.equal(upstream.last().json!.prompt, `${PERSONA}\nuser: Hi.\nassistant: Hello.\nuser: How are you?`);
    });

    it('refuses a bad conversation_id with a clear 400 in the envelope', async () => {
      for (const [body, pattern] of [
        [{ prompt: 'hi', conversation_id: 'x'.repeat(129) }, /conversation_id.*at most 128 characters/],
        [{ prompt: 'hi', conversation_id: '' }, /conversation_id.*must not be empty/],
        [{ prompt: 'hi', conversation_id: 42 }, /conversation_id.*must be a string/],
        [{ prompt: 'hi', conversation_id: 'a\nb' }, /conversation_id.*control characters/],
        [{ messages: [{ role: 'user', content: 'hi' }], conversation_id: 'both' }, /conversation_id.*goes with prompt, not messages/],
      ] as const) {
        const { json } = await chat(keys.botA!, body);
        assert.equal(json.code, 400, JSON.stringify(json));
        assert.match(json.msg, pattern);
      }
      assert.equal(upstream.requests.length, 0);
      const long = await conversation(keys.botA!, 'y'.repeat(129));
      assert.equal(long.code, 400);
      assert.match(long.msg, /at most 128 characters/);
      // Exactly 128 characters, with characters that need encoding, is fine.
      const id = `wx/${'é'.repeat(100)}?#${'z'.repeat(23)}`;
      assert.equal(id.length, 128);
      await turn(keys.botA!, id, 'odd id', 'fine');
      assert.deepEqual(await storedTurns(keys.botA!, id), [['odd id', 'fine']]);
      // No key, a wrong key: refused before anything is read.
      const anonymous = await fetch(`${gateway.url}/api/chat/conversations/wx-user-1`);
      assert.equal(((await anonymous.json()) as Envelope).code, 401);
      assert.equal((await conversation('oa-not-a-real-key-000000000000000000', 'wx-user-1')).code, 401);
    });

    it('the admin API lists, shows and deletes a key’s conversations', async () => {
      await turn(keys.botB!, 'admin-view', 'for the admin', 'seen');
      const list = await admin('GET', '/admin/keys/bot-b/conversations');
      assert.equal(list.status, 200);
      const ids = (list.json as { data: Array<{ conversation_id: string; turns: number }> }).data;
      assert.deepEqual(ids[0], { ...ids[0], conversation_id: 'admin-view', turns: 1 }, 'most recent first');
      assert.ok(!ids.some((c) => c.conversation_id === 'wx-user-1'), 'only bot-b’s');
      const shown = await admin('GET', `/admin/keys/bot-b/conversations/${encodeURIComponent('admin-view')}`);
      assert.equal(shown.status, 200);
      assert.deepEqual((shown.json as { turns: Array<{ prompt: string; answer: string }> }).turns.map((t) => [t.prompt, t.answer]), [['for the admin', 'seen']]);
      assert.equal((await admin('GET', '/admin/keys/bot-b/conversations/wx-user-1')).status, 404);
      assert.equal((await admin('GET', '/admin/keys/nobody/conversations')).status, 404);
      assert.equal((await admin('DELETE', '/admin/keys/bot-b/conversations/admin-view')).status, 204);
      assert.equal((await conversation(keys.botB!, 'admin-view')).code, 404);
      // Per-key memory settings through the admin API: shown, changed, cleared.
      const patched = await admin('PATCH', '/admin/keys/bot-b', { memory_max_tokens: 1234, memory_ttl: 60 });
      assert.deepEqual([(patched.json as Record<string, unknown>).memory_max_tokens, (patched.json as Record<string, unknown>).memory_ttl], [1234, 60]);
      const cleared = await admin('PATCH', '/admin/keys/bot-b', { memory_max_tokens: null, memory_ttl: null });
      assert.deepEqual([(cleared.json as Record<string, unknown>).memory_max_tokens, (cleared.json as Record<string, unknown>).memory_ttl], [null, null]);
      assert.equal((await admin('PATCH', '/admin/keys/bot-b', { memory_ttl: 0 })).status, 400);
    });
  });
}

describe('conversations across two gateway instances sharing PostgreSQL', { skip: requirePostgres().skip }, () => {
  let upstream: FakeUpstream;
  let database: TestDatabase;
  let first: TestGateway;
  let second: TestGateway;

  before(async () => {
    upstream = await FakeUpstream.start();
    database = await requirePostgres().open();
    const env = { BASE_URL: upstream.url, APIKEY: 'sk-upstream-two-instances', ACCESS_TOKEN: ACCESS, DATABASE_URL: database.url, MAX_ATTEMPTS: '1' };
    first = await startTestGateway(env, { bot_desc: PERSONA });
    second = await startTestGateway(env, { bot_desc: PERSONA });
  });
  after(async () => {
    await first.close();
    await second.close();
    await database.cleanup();
    await upstream.close();
  });

  const ask = async (gateway: TestGateway, prompt: string, answer: string): Promise<void> => {
    upstream.replyText = answer;
    const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${ACCESS}`, 'content-type': 'application/json' }, body: JSON.stringify({ prompt, conversation_id: 'roaming' }) });
    assert.deepEqual(await response.json(), { code: 200, data: answer, msg: 'success' });
  };

  it('a conversation continues on whichever instance the next message reaches', async () => {
    await ask(first, 'hello from one', 'hi one');
    await ask(second, 'hello from two', 'hi two');
    assert.deepEqual(upstream.last().json!.messages, [{ role: 'system', content: PERSONA }, { role: 'user', content: 'hello from one' }, { role: 'assistant', content: 'hi one' }, { role: 'user', content: 'hello from two' }]);
  });

  it('messages sent to both at once are all stored, each under its own number', async () => {
    upstream.replyText = 'same';
    const sends = Array.from({ length: 8 }, (_, i) => fetch(`${(i % 2 === 0 ? first : second).url}/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${ACCESS}`, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: `burst ${i}`, conversation_id: 'burst' }) }).then((r) => r.json()));
    for (const answer of await Promise.all(sends)) assert.deepEqual(answer, { code: 200, data: 'same', msg: 'success' });
    const rows = await database.db.selectFrom('conversation_turns').select(['seq', 'prompt']).where('conversation_id', '=', 'burst').orderBy('seq').execute();
    assert.deepEqual(rows.map((row) => Number(row.seq)), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(rows.map((row) => row.prompt).sort(), Array.from({ length: 8 }, (_, i) => `burst ${i}`).sort());
  });
});
