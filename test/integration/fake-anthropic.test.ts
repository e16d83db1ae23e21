import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic, { APIError } from '@anthropic-ai/sdk';
import { runClaudeCode } from '../helpers/claude-code.js';
import { FakeAnthropic } from '../helpers/fake-anthropic.js';

// The fake Anthropic upstream proved against the real clients, pointed straight at it (no
// gateway): what the gateway's Anthropic tests build on must be what these clients accept.

const KEY = 'sk-ant-api03-fake-anthropic-test-key';
const PROMPT_USAGE = { input_tokens: 25, cache_creation_input_tokens: 1000, cache_read_input_tokens: 3000 };

describe('fake Anthropic upstream, with @anthropic-ai/sdk', () => {
  let fake: FakeAnthropic;
  let client: Anthropic;
  before(async () => {
    fake = await FakeAnthropic.start();
    client = new Anthropic({ apiKey: KEY, baseURL: fake.origin, maxRetries: 0 });
  });
  after(async () => {
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('answers messages.create with a message the SDK reads, usage with cache reads and writes', async () => {
    const message = await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'say hi' }] });
    assert.deepEqual(message.content, [{ type: 'text', text: fake.replyText }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.deepEqual(message.usage, { ...PROMPT_USAGE, output_tokens: 6 });
    const request = fake.last();
    assert.equal(`${request.method} ${request.url}`, 'POST /v1/messages');
    // SDK 1.x (API version 2026-10-21) sends an API key as a bearer token, not x-api-key.
    assert.equal(request.headers.authorization, `Bearer ${KEY}`);
    assert.equal(request.headers['anthropic-version'], '2026-10-21');
    assert.deepEqual(request.json, { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'say hi' }] });
  });

  it('streams the standard event sequence: messages.stream yields the text and the final usage', async () => {
    const stream = client.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'say hi' }] });
    const deltas: string[] = [];
    stream.on('text', (text) => deltas.push(text));
    const final = await stream.finalMessage();
    assert.equal(deltas.join(''), fake.replyText);
    assert.ok(deltas.length > 1, 'one delta per word');
    assert.deepEqual(final.content.map((block) => (block.type === 'text' ? block.text : block.type)), [fake.replyText]);
    assert.equal(final.stop_reason, 'end_turn');
    assert.deepEqual({ ...final.usage }, { ...PROMPT_USAGE, output_tokens: 6 });
    assert.equal(fake.last().json?.stream, true);
  });

  it('answers with tool_use, whole or streamed as input_json_delta pieces', async () => {
    fake.replyText = 'Let me look.';
    fake.replyToolUse = [{ name: 'get_weather', input: { city: 'Paris', unit: 'celsius' } }];
    const tools = [{ name: 'get_weather', description: 'Weather of a city', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] } }];
    const params = { model: 'claude-sonnet-4-5', max_tokens: 100, tools, messages: [{ role: 'user' as const, content: 'weather in Paris?' }] };
    const whole = await client.messages.create(params);
    assert.equal(whole.stop_reason, 'tool_use');
    assert.deepEqual(whole.content.map((block) => block.type), ['text', 'tool_use']);
    assert.deepEqual(whole.content[1], { type: 'tool_use', id: 'toolu_fake1', name: 'get_weather', input: { city: 'Paris', unit: 'celsius' } });
    const streamed = await client.messages.stream(params).finalMessage();
    assert.equal(streamed.stop_reason, 'tool_use');
    const call = streamed.content.find((block) => block.type === 'tool_use');
    assert.deepEqual(call && { id: call.id, name: call.name, input: call.input }, { id: 'toolu_fake1', name: 'get_weather', input: { city: 'Paris', unit: 'celsius' } });
    // The round trip: the tool's result goes back as a tool_result block.
    fake.replyToolUse = undefined;
    fake.replyText = 'It is sunny.';
    const answer = await client.messages.create({ ...params, messages: [...params.messages, { role: 'assistant', content: whole.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_fake1', content: '21 °C, sunny' }] }] });
    assert.deepEqual(answer.content, [{ type: 'text', text: 'It is sunny.' }]);
    assert.deepEqual((fake.last().json?.messages as unknown[]).at(-1), { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_fake1', content: '21 °C, sunny' }] });
  });

  it('counts tokens and lists models', async () => {
    fake.countTokens = 123;
    assert.deepEqual(await client.messages.countTokens({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi' }] }), { input_tokens: 123 });
    assert.equal(`${fake.last().method} ${fake.last().url}`, 'POST /v1/messages/count_tokens');
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    assert.deepEqual(ids, fake.models.map((model) => model.id));
  });

  it('answers 529 overloaded with Anthropic\'s error body, which the SDK retries', async () => {
    fake.overloaded(1, { 'retry-after-ms': '10' });
    const retrying = new Anthropic({ apiKey: KEY, baseURL: fake.origin, maxRetries: 1 });
    const message = await retrying.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(message.content[0]?.type, 'text');
    assert.deepEqual(fake.requests.map((request) => request.headers['x-stainless-retry-count']), ['0', '1']);
    fake.overloaded(2, { 'retry-after-ms': '10' });
    const refused = await retrying.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).catch((error: unknown) => error);
    assert.ok(refused instanceof APIError);
    assert.equal(refused.status, 529);
    assert.deepEqual(refused.error, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
  });

  it('fails a stream the SDK reads when an error event comes mid-stream, or the connection drops', async () => {
    fake.errorMidStream();
    const failed = await client.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).finalMessage().catch((error: unknown) => error);
    assert.ok(failed instanceof Error);
    assert.match(String((failed as Error).message), /overloaded_error|Overloaded/);
    fake.dropMidStream();
    const dropped = await client.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).finalMessage().catch((error: unknown) => error);
    assert.ok(dropped instanceof Error);
  });

  it('refuses a request without a key or without max_tokens, as Anthropic does', async () => {
    const bare = await fetch(`${fake.origin}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.deepEqual([bare.status, await bare.json()], [401, { type: 'error', error: { type: 'authentication_error', message: 'x-api-key header is required' } }]);
    const noMax = await fetch(`${fake.origin}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: JSON.stringify({ model: 'claude-sonnet-4-5', messages: [] }) });
    assert.equal(noMax.status, 400);
  });
});

describe('fake Anthropic upstream, with Claude Code', () => {
  let fake: FakeAnthropic;
  before(async () => {
    fake = await FakeAnthropic.start();
  });
  after(async () => {
    await fake.close();
  });

  it('claude -p prints the fake\'s answer; its request is one streamed POST /v1/messages?beta=true with x-api-key', async () => {
    const result = await runClaudeCode({ baseUrl: fake.origin, apiKey: KEY, prompt: 'say hi', model: 'claude-sonnet-4-5', timeoutMs: 30_000 });
    assert.equal(result.code, 0, `stderr: ${result.stderr}\nstdout: ${result.stdout}`);
    assert.equal(result.json?.result, fake.replyText);
    assert.equal(result.json?.is_error, false);
    assert.deepEqual((result.json?.usage as Record<string, unknown>).cache_read_input_tokens, PROMPT_USAGE.cache_read_input_tokens);
    assert.equal(fake.requests.length, 1, fake.requests.map((request) => request.url).join(', '));
    const request = fake.last();
    assert.equal(`${request.method} ${request.url}`, 'POST /v1/messages?beta=true');
    assert.equal(request.headers['x-api-key'], KEY);
    assert.equal(request.headers.authorization, undefined);
    assert.equal(request.headers['anthropic-version'], '2023-06-01');
    assert.match(String(request.headers['anthropic-beta']), /claude-code-20250219/);
    assert.equal(request.json?.stream, true);
    assert.equal(request.json?.model, 'claude-sonnet-4-5');
    assert.deepEqual(request.json?.tools, [], 'tools off: an empty array, which an OpenAI upstream would refuse');
    assert.ok(Array.isArray(request.json?.system), 'system as text blocks');
  });
});
