import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { FakeUpstream } from '../helpers/fake-upstream.js';

// The fake OpenAI upstream's tool calls, proved against the real openai SDK: the upstream side of
// translating Anthropic's tool_use (tests of /v1/messages over an OpenAI upstream build on it).

describe('fake OpenAI upstream answering with tool calls', () => {
  let fake: FakeUpstream;
  let client: OpenAI;
  const calls = [
    { name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' },
    { name: 'get_time', arguments: '{"timezone":"Europe/Paris"}' },
  ];
  const request = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'weather and time in Paris?' }], tools: calls.map((call) => ({ type: 'function' as const, function: { name: call.name, parameters: { type: 'object' } } })) };

  before(async () => {
    fake = await FakeUpstream.start();
    client = new OpenAI({ baseURL: fake.url, apiKey: 'sk-fake-tool-calls', maxRetries: 0 });
  });
  after(async () => {
    await fake.close();
  });

  it('answers with two tool calls in one message, finish_reason tool_calls', async () => {
    fake.replyToolCalls = calls;
    const completion = await client.chat.completions.create(request);
    const choice = completion.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.deepEqual(choice.message.tool_calls?.map((call) => (call.type === 'function' ? [call.id, call.function.name, call.function.arguments] : [])), [
      ['call_fake1', 'get_weather', calls[0]!.arguments],
      ['call_fake2', 'get_time', calls[1]!.arguments],
    ]);
  });

  it('streams them with the arguments split over several chunks, which the SDK puts back together', async () => {
    fake.replyToolCalls = calls;
    const stream = client.chat.completions.stream({ ...request, stream_options: { include_usage: true } });
    let argumentChunks = 0;
    stream.on('chunk', (chunk) => (argumentChunks += chunk.choices[0]?.delta.tool_calls?.filter((call) => call.function?.arguments).length ?? 0));
    const final = await stream.finalChatCompletion();
    assert.ok(argumentChunks >= 6, `${argumentChunks} argument pieces`);
    const choice = final.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.deepEqual(choice.message.tool_calls?.map((call) => (call.type === 'function' ? [call.id, call.function.name, JSON.parse(call.function.arguments) as unknown] : [])), [
      ['call_fake1', 'get_weather', { city: 'Paris', unit: 'celsius' }],
      ['call_fake2', 'get_time', { timezone: 'Europe/Paris' }],
    ]);
    assert.equal(final.usage?.total_tokens, 58);
  });

  it('answers with text again after reset()', async () => {
    fake.replyToolCalls = calls;
    fake.reset();
    const completion = await client.chat.completions.create(request);
    assert.equal(completion.choices[0]!.message.content, fake.replyText);
  });
});
