import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { runClaudeCode } from '../helpers/claude-code.js';
import { FakeAnthropic } from '../helpers/fake-anthropic.js';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { usageRecord } from '../helpers/usage-records.js';

const ADMIN = 'admin-token-messages-0123456789';
const ACCESS = 'owner-access-token-messages';
const OPENAI_KEY = 'sk-upstream-openai-messages-0123';
const ANTHROPIC_KEY = 'sk-ant-upstream-messages-0123456';

type Json = Record<string, unknown>;

/** claude-sonnet-4-5: 3 input, 0.3 cache read, 3.75 cache write, 15 output (USD per 1M tokens). */
const sonnetCost = (input: number, read: number, write: number, output: number): number => Math.round(((input * 3 + read * 0.3 + write * 3.75 + output * 15) / 1e6) * 1e9) / 1e9;

/**
 * Anthropic's Messages API through the gateway (issue 13), both ways: Anthropic clients (the
 * official SDK, Claude Code) served natively by an Anthropic upstream or by an OpenAI one through
 * translation, and OpenAI clients served by Claude models — confined, limited and metered like /v1.
 */
describe('Messages API', () => {
  let claude: FakeAnthropic;
  let openai: FakeUpstream;
  let gateway: TestGateway;
  const keys: Record<string, string> = {};

  const admin = async (body: Json): Promise<string> => {
    const response = await fetch(`${gateway.adminUrl}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const answer = (await response.json()) as { key: string };
    assert.equal(response.status, 201, JSON.stringify(answer));
    return answer.key;
  };
  const anthropic = (apiKey: string, headers: Record<string, string> = {}): Anthropic => new Anthropic({ apiKey, baseURL: gateway.url, maxRetries: 0, defaultHeaders: headers });
  const post = (key: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  before(async () => {
    claude = await FakeAnthropic.start();
    openai = await FakeUpstream.start();
    const upstreams = [
      { name: 'claude', type: 'anthropic', base_url: claude.url, api_keys: [ANTHROPIC_KEY], models: ['claude-sonnet-*', 'claude-haiku-*'] },
      { name: 'openai', type: 'openai', base_url: openai.url, api_keys: [OPENAI_KEY], models: ['gpt-*'] },
    ];
    gateway = await startTestGateway({ ACCESS_TOKEN: ACCESS, ADMIN_TOKEN: ADMIN, MAX_ATTEMPTS: '2', RETRY_BASE_DELAY: '0', UPSTREAMS: JSON.stringify(upstreams), MODEL_ALIAS: JSON.stringify({ 'claude-opus-*': 'gpt-4o-mini' }) });
    keys.agent = await admin({ name: 'agent', models: ['claude-*', 'gpt-*'] });
    keys.narrow = await admin({ name: 'narrow', models: ['gpt-4o-mini'] });
    keys.persona = await admin({ name: 'persona', bot_desc: 'You are a pirate.', max_tokens_ceiling: 100 });
    keys.tight = await admin({ name: 'tight', budget_tokens: 5000, budget_period: 'day' });
  });
  after(async () => {
    await gateway.close();
    await claude.close();
    await openai.close();
  });
  beforeEach(() => {
    claude.reset();
    openai.reset();
  });

  describe('native, to an Anthropic upstream', () => {
    it('relays the SDK with the server key, keeps beta headers and the query, and meters cache reads and writes', async () => {
      const message = await anthropic(keys.agent!, { 'anthropic-beta': 'interleaved-thinking-2025-05-14', 'x-request-id': 'msg-native-1' }).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal((message.content[0] as { text: string }).text, claude.replyText);
      const seen = claude.last();
      assert.equal(seen.path, '/v1/messages');
      assert.equal(seen.headers['x-api-key'], ANTHROPIC_KEY, 'the server key went upstream, never the app key');
      assert.equal(seen.headers.authorization, undefined);
      assert.equal(seen.headers['anthropic-beta'], 'interleaved-thinking-2025-05-14');
      assert.ok(seen.headers['anthropic-version']);
      const record = await usageRecord(gateway, 'msg-native-1');
      assert.equal(record.key_name, 'agent');
      assert.equal(record.upstream, 'claude');
      assert.equal(record.route, '/v1/messages');
      const { input_tokens: input, cache_read_input_tokens: read, cache_creation_input_tokens: write } = claude.usage;
      assert.equal(record.prompt_tokens, input + read + write);
      assert.equal(record.cached_tokens, read);
      assert.equal(record.completion_tokens, message.usage.output_tokens);
      assert.equal(record.cost_usd, sonnetCost(input, read, write, message.usage.output_tokens));
    });

    it('passes an unrestricted caller’s bytes through unchanged, unknown fields and the ?beta=true query included', async () => {
      const bytes = '{"model":"claude-sonnet-4-5", "max_tokens":8,"messages":[{"role":"user","content":"x"}],"future_field":{"a":1}}';
      const response = await post(ACCESS, '/v1/messages?beta=true', bytes);
      assert.equal(response.status, 200, await response.clone().text());
      assert.equal(claude.last().body.toString(), bytes);
      assert.equal(claude.last().url, '/v1/messages?beta=true');
    });

    it('streams the native events as they come and meters them', async () => {
      const stream = anthropic(keys.agent!, { 'x-request-id': 'msg-native-stream' }).messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] });
      const final = await stream.finalMessage();
      assert.equal((final.content[0] as { text: string }).text, claude.replyText);
      const record = await usageRecord(gateway, 'msg-native-stream');
      assert.equal(record.completion_tokens, final.usage.output_tokens);
      assert.equal(record.cached_tokens, claude.usage.cache_read_input_tokens);
      assert.equal(record.usage_source, 'upstream');
    });

    it("puts the key's persona first in system and caps max_tokens at its ceiling", async () => {
      await anthropic(keys.persona!).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 4000, system: [{ type: 'text', text: 'Be brief.' }], messages: [{ role: 'user', content: 'Hi' }] });
      const body = claude.last().json!;
      assert.deepEqual(body.system, [{ type: 'text', text: 'You are a pirate.' }, { type: 'text', text: 'Be brief.' }]);
      assert.equal(body.max_tokens, 100);
    });

    it('round-trips a tool call natively, streamed', async () => {
      claude.replyToolUse = [{ name: 'get_weather', input: { city: 'Lima' } }];
      const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } } } }];
      const final = await anthropic(keys.agent!).messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 64, tools, messages: [{ role: 'user', content: 'Weather in Lima?' }] }).finalMessage();
      claude.replyToolUse = undefined;
      const call = final.content.find((block) => block.type === 'tool_use') as { id: string; input: unknown } | undefined;
      assert.deepEqual(call?.input, { city: 'Lima' });
      await anthropic(keys.agent!).messages.create({
        model: 'claude-sonnet-4-5',
        max_tokens: 64,
        tools,
        messages: [
          { role: 'user', content: 'Weather in Lima?' },
          { role: 'assistant', content: final.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: call!.id, content: 'Foggy' }] },
        ],
      });
      const last = (claude.last().json!.messages as Json[]).at(-1)!;
      assert.deepEqual(last.content, [{ type: 'tool_result', tool_use_id: call!.id, content: 'Foggy' }]);
    });

    it("relays the upstream's error with its status and headers, an echoed server key blanked out", async () => {
      claude.failWith(400, `messages.0: bad block (key ${ANTHROPIC_KEY})`, { 'request-id': 'req_upstream_1' });
      const response = await post(keys.agent!, '/v1/messages', { model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
      assert.equal(response.status, 400);
      assert.equal(response.headers.get('request-id'), 'req_upstream_1');
      const text = await response.text();
      assert.doesNotMatch(text, new RegExp(ANTHROPIC_KEY));
      assert.equal((JSON.parse(text) as { error: { type: string } }).error.type, 'invalid_request_error');
    });

    it('retries a 529 overloaded answer and counts tokens natively', async () => {
      claude.overloaded(1);
      const message = await anthropic(keys.agent!).messages.create({ model: 'claude-haiku-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal((message.content[0] as { text: string }).text, claude.replyText);
      assert.equal(claude.requests.filter((request) => request.path === '/v1/messages').length, 2);
      claude.countTokens = 42;
      const counted = await anthropic(keys.agent!).messages.countTokens({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal(counted.input_tokens, 42);
    });
  });

  describe('translated, to an OpenAI-compatible upstream', () => {
    it('serves the SDK from chat completions: system, text, usage in Anthropic shape, metered under the served model', async () => {
      const message = await anthropic(keys.agent!, { 'x-request-id': 'msg-translated-1' }).messages.create({ model: 'gpt-4o-mini', max_tokens: 64, system: 'Be brief.', messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal((message.content[0] as { text: string }).text, openai.replyText);
      assert.equal(message.stop_reason, 'end_turn');
      const sent = openai.last();
      assert.equal(sent.path, '/v1/chat/completions');
      assert.equal(sent.headers.authorization, `Bearer ${OPENAI_KEY}`);
      const messages = sent.json!.messages as Json[];
      assert.deepEqual(messages[0], { role: 'system', content: 'Be brief.' });
      const record = await usageRecord(gateway, 'msg-translated-1');
      assert.equal(record.model, 'gpt-4o-mini');
      assert.equal(record.upstream, 'openai');
      assert.equal(record.prompt_tokens, message.usage.input_tokens + (message.usage.cache_read_input_tokens ?? 0));
    });

    it('streams the translation event by event and round-trips a tool call', async () => {
      openai.replyToolCalls = [{ name: 'get_weather', arguments: '{"city":"Paris"}' }];
      const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } } } }];
      const stream = anthropic(keys.agent!).messages.stream({ model: 'gpt-4o-mini', max_tokens: 64, tools, messages: [{ role: 'user', content: 'Weather in Paris?' }] });
      const events: string[] = [];
      stream.on('streamEvent', (event) => events.push(event.type));
      const final = await stream.finalMessage();
      const call = final.content.find((block) => block.type === 'tool_use') as { id: string; name: string; input: unknown } | undefined;
      assert.equal(call?.name, 'get_weather');
      assert.deepEqual(call?.input, { city: 'Paris' });
      assert.equal(final.stop_reason, 'tool_use');
      assert.equal(events[0], 'message_start');
      assert.equal(events.at(-1), 'message_stop');
      assert.ok(events.includes('content_block_delta'));
      assert.deepEqual((openai.last().json!.tools as Json[]).map((tool) => (tool.function as Json).name), ['get_weather']);

      openai.replyToolCalls = undefined;
      const answer = await anthropic(keys.agent!).messages.create({
        model: 'gpt-4o-mini',
        max_tokens: 64,
        tools,
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', content: final.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: call!.id, content: 'Sunny' }] },
        ],
      });
      assert.equal((answer.content[0] as { text: string }).text, openai.replyText);
      const history = openai.last().json!.messages as Json[];
      const toolMessage = history.find((message) => message.role === 'tool');
      assert.equal(toolMessage?.tool_call_id, call!.id);
      assert.equal(toolMessage?.content, 'Sunny');
    });

    it('counts tokens locally when the upstream cannot', async () => {
      const counted = await anthropic(keys.agent!).messages.countTokens({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there, how are you today?' }] });
      assert.ok(counted.input_tokens > 5 && counted.input_tokens < 40, String(counted.input_tokens));
      assert.deepEqual(openai.requests, []);
    });

    it('refuses what it cannot translate with a 400 naming it, before anything reaches the upstream', async () => {
      const response = await post(keys.agent!, '/v1/messages', { model: 'gpt-4o-mini', max_tokens: 8, top_k: 5, messages: [{ role: 'user', content: 'x' }] });
      assert.equal(response.status, 400);
      const body = (await response.json()) as { type: string; error: { type: string; message: string } };
      assert.equal(body.type, 'error');
      assert.equal(body.error.type, 'invalid_request_error');
      assert.match(body.error.message, /top_k/);
      assert.deepEqual(openai.requests, []);
    });
  });

  describe('confinement and errors in Anthropic’s shape', () => {
    it('answers a missing key 401, another model 403 and an unknown model 404, as Anthropic errors', async () => {
      const none = await fetch(`${gateway.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(none.status, 401);
      assert.equal(((await none.json()) as { error: { type: string } }).error.type, 'authentication_error');
      const other = await post(keys.narrow!, '/v1/messages', { model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
      assert.equal(other.status, 403);
      assert.equal(((await other.json()) as { error: { type: string } }).error.type, 'permission_error');
      const unknown = await post(keys.agent!, '/v1/messages', { model: 'claude-nope', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
      assert.equal(unknown.status, 404);
      const bad = await post(keys.agent!, '/v1/messages', '{not json');
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { type: string }).type, 'error');
      assert.deepEqual([claude.requests, openai.requests], [[], []]);
    });

    it('holds a token budget on /v1/messages', async () => {
      const sdk = anthropic(keys.tight!);
      await sdk.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
      await sdk.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
      await assert.rejects(sdk.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }), (error: { status?: number }) => error.status === 429);
    });

    it('lists the models an Anthropic client may use in Anthropic’s shape', async () => {
      const response = await fetch(`${gateway.url}/v1/models`, { headers: { 'x-api-key': keys.narrow!, 'anthropic-version': '2023-06-01' } });
      const body = (await response.json()) as { data: Array<{ type: string; id: string }> };
      assert.ok(body.data.length > 0);
      assert.ok(body.data.every((model) => model.type === 'model' && model.id === 'gpt-4o-mini'));
    });
  });

  describe('OpenAI clients on Claude models', () => {
    it('answers chat completions from the Anthropic upstream, streamed with include_usage, and with tool calls', async () => {
      const client = new OpenAI({ apiKey: keys.agent!, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
      const completion = await client.chat.completions.create({ model: 'claude-sonnet-4-5', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }] });
      assert.equal(completion.choices[0]!.message.content, claude.replyText);
      assert.equal(completion.choices[0]!.finish_reason, 'stop');
      const sent = claude.last().json!;
      assert.equal(sent.system, 'Be brief.');
      assert.equal(typeof sent.max_tokens, 'number');
      assert.equal(completion.usage?.prompt_tokens, claude.usage.input_tokens + claude.usage.cache_read_input_tokens + claude.usage.cache_creation_input_tokens);

      const stream = await client.chat.completions.create({ model: 'claude-sonnet-4-5', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Hi' }] });
      let text = '';
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        usage = chunk.usage ?? usage;
      }
      assert.equal(text, claude.replyText);
      assert.ok(usage && usage.completion_tokens > 0);

      claude.replyToolUse = [{ name: 'get_weather', input: { city: 'Oslo' } }];
      const calls = await client.chat.completions.create({ model: 'claude-sonnet-4-5', tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }], messages: [{ role: 'user', content: 'Weather?' }] });
      const call = calls.choices[0]!.message.tool_calls?.[0];
      assert.equal(calls.choices[0]!.finish_reason, 'tool_calls');
      assert.equal(call?.type === 'function' ? call.function.name : undefined, 'get_weather');
      assert.deepEqual(JSON.parse(call?.type === 'function' ? call.function.arguments : '{}'), { city: 'Oslo' });
      claude.replyToolUse = undefined;
    });

    it('streams /api/chat from a Claude model in the seed envelope', async () => {
      const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${ACCESS}`, 'content-type': 'application/json', 'x-request-id': 'api-chat-claude-stream' }, body: JSON.stringify({ prompt: 'Hi', model: 'claude-haiku-4-5', stream: true }) });
      const text = await response.text();
      const deltas = [...text.matchAll(/^data: (\{"delta".*\})$/gm)].map((match) => (JSON.parse(match[1]!) as { delta: string }).delta);
      assert.equal(deltas.join(''), claude.replyText);
      assert.match(text, /event: done\ndata: \{"code":200/);
      const record = await usageRecord(gateway, 'api-chat-claude-stream');
      assert.equal(record.upstream, 'claude');
      assert.equal(record.cached_tokens, claude.usage.cache_read_input_tokens);
    });

    it('serves /api/chat from a Claude model', async () => {
      const response = await fetch(`${gateway.url}/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${ACCESS}`, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Hi', model: 'claude-haiku-4-5' }) });
      const body = (await response.json()) as { code: number; data: string };
      assert.equal(body.code, 200, JSON.stringify(body));
      assert.equal(body.data, claude.replyText);
      assert.equal(claude.last().path, '/v1/messages');
    });
  });

  describe('Claude Code', () => {
    it('answers `claude -p` natively from the Anthropic upstream, with the server key and its betas kept', async () => {
      const result = await runClaudeCode({ baseUrl: gateway.url, apiKey: keys.agent!, prompt: 'say hi', model: 'claude-sonnet-4-5', authToken: true });
      assert.equal(result.code, 0, `${result.stderr}\n${result.stdout}`);
      assert.equal(result.json?.result, claude.replyText);
      const sent = claude.requests.find((request) => request.path === '/v1/messages');
      assert.ok(sent, 'the request reached the Anthropic upstream');
      assert.equal(sent.url, '/v1/messages?beta=true');
      assert.equal(sent.headers['x-api-key'], ANTHROPIC_KEY);
      assert.equal(sent.headers.authorization, undefined, 'the app key (sent as a bearer token) stayed behind');
      assert.match(String(sent.headers['anthropic-beta']), /claude-code-/);
      assert.deepEqual(sent.json?.tools, [], 'native: the body as Claude Code sent it');
    });

    it('answers `claude -p` with an app key from the OpenAI upstream through translation, metered under that key', async () => {
      const result = await runClaudeCode({ baseUrl: gateway.url, apiKey: keys.agent!, prompt: 'say hi', model: 'claude-opus-4-1' });
      assert.equal(result.code, 0, `${result.stderr}\n${result.stdout}`);
      assert.equal(result.json?.is_error, false, result.stdout);
      assert.equal(result.json?.result, openai.replyText);
      const sent = openai.requests.find((request) => request.path === '/v1/chat/completions');
      assert.ok(sent, 'the request reached the OpenAI upstream as chat completions');
      assert.equal(sent.json?.model, 'gpt-4o-mini');
      assert.equal(sent.json?.max_tokens, 16_384, "Claude Code's 32000 capped at what gpt-4o-mini can give");
      assert.equal(sent.headers.authorization, `Bearer ${OPENAI_KEY}`);
      await gateway.gateway.writer.flush();
      const rows = await gateway.gateway.database.db.selectFrom('usage_records').selectAll().where('key_name', '=', 'agent').where('route', '=', '/v1/messages').where('model', '=', 'gpt-4o-mini').execute();
      assert.ok(rows.some((row) => Number(row.total_tokens) > 0), 'Claude Code’s turn was metered');
    });
  });
});
