import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { chatToMessagesRequest } from '../../../src/translate/chat-to-messages.js';
import { chatCompletionToMessage } from '../../../src/translate/chat-to-messages-response.js';
import { ChatToMessagesStream } from '../../../src/translate/chat-stream-to-messages.js';
import { messagesToChatRequest, TOOL_ERROR_PREFIX } from '../../../src/translate/messages-to-chat.js';
import { messageToChatCompletion } from '../../../src/translate/messages-to-chat-response.js';
import { MessagesToChatStream } from '../../../src/translate/messages-stream-to-chat.js';
import { accumulateChat, accumulateMessage, anthropicEvents, chatChunk, chatChunks, type Json } from './stream-readers.js';

const RUNS = { numRuns: 200 };

// Any non-empty text, multi-byte characters and newlines included (Anthropic refuses empty text).
const text = fc.string({ unit: 'binary', minLength: 1, maxLength: 24 });
const toolName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_-]{0,15}$/);
// Inputs as JSON carries them (no -0, no undefined).
const toolInput = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }).map((value) => JSON.parse(JSON.stringify(value)) as Json);
const cache = fc.option(fc.constant({ type: 'ephemeral' }), { nil: undefined });

const textBlock = fc.record({ text, cache_control: cache }, { requiredKeys: ['text'] }).map((block) => ({ type: 'text', ...block }));
const textContent = fc.oneof(text, fc.array(textBlock, { minLength: 1, maxLength: 3 }));

interface Call {
  id: string;
  name: string;
  input: Json;
}
interface Result {
  tool_use_id: string;
  content: string | Json[];
  is_error?: boolean;
}

/** One assistant turn and the user turn that answers it: tool results for its calls, then maybe text. */
const exchange = fc.record({
  said: fc.option(text, { nil: undefined }),
  thought: fc.boolean(),
  calls: fc.array(fc.record({ name: toolName, input: toolInput }), { maxLength: 3 }),
  results: fc.array(fc.record({ content: textContent, is_error: fc.option(fc.boolean(), { nil: undefined }) }), { minLength: 3, maxLength: 3 }),
  reply: fc.option(fc.array(textBlock, { minLength: 1, maxLength: 2 }), { nil: undefined }),
});

const tool = fc.record(
  { name: toolName, description: text, properties: fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), fc.constantFrom({ type: 'string' }, { type: 'number' }), { maxKeys: 3 }), cache_control: cache },
  { requiredKeys: ['name', 'properties'] },
).map(({ properties, ...rest }) => ({ ...rest, input_schema: { type: 'object', properties } }));

const anthropicRequest = fc
  .record({
    system: fc.option(textContent, { nil: undefined }),
    innerSystem: fc.option(text, { nil: undefined }),
    first: textContent,
    exchanges: fc.array(exchange, { maxLength: 4 }),
    tools: fc.array(tool, { maxLength: 3 }),
    choice: fc.constantFrom('auto', 'any', 'none', 'tool', undefined),
    maxTokens: fc.integer({ min: 1, max: 64_000 }),
    temperature: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
    stop: fc.option(fc.array(text, { minLength: 1, maxLength: 3 }), { nil: undefined }),
  })
  .map((r) => {
    let id = 0;
    const calls: Call[] = [];
    const results: Result[] = [];
    const messages: Json[] = [{ role: 'user', content: r.first }];
    if (r.innerSystem !== undefined) messages.push({ role: 'system', content: r.innerSystem });
    for (const step of r.exchanges) {
      const made = step.calls.map((call) => ({ id: `toolu_${id++}`, ...call }));
      if (step.said === undefined && made.length === 0) continue;
      const content: Json[] = [];
      if (step.thought) content.push({ type: 'thinking', thinking: 'hmm', signature: 'sig' });
      if (step.said !== undefined) content.push({ type: 'text', text: step.said });
      content.push(...made.map((call) => ({ type: 'tool_use', ...call })));
      messages.push({ role: 'assistant', content });
      calls.push(...made);
      const answered = made.map((call, i) => ({ tool_use_id: call.id, ...step.results[i]! }));
      results.push(...answered);
      const reply = step.reply ?? (made.length === 0 ? [{ type: 'text', text: 'go on' }] : []);
      messages.push({ role: 'user', content: [...answered.map((result) => ({ type: 'tool_result', ...result })), ...reply] });
    }
    const body: Json = { model: 'claude-sonnet-4-5', max_tokens: r.maxTokens, messages };
    if (r.system !== undefined) body.system = r.system;
    if (r.tools.length > 0) body.tools = r.tools;
    if (r.choice !== undefined) body.tool_choice = r.choice === 'tool' ? { type: 'tool', name: r.tools[0]?.name ?? 'f' } : { type: r.choice };
    if (r.temperature !== undefined) body.temperature = r.temperature;
    if (r.stop !== undefined) body.stop_sequences = r.stop;
    // As a parsed HTTP body would be (fast-check's dictionaries have no prototype).
    return JSON.parse(JSON.stringify({ body, calls, results })) as { body: Json; calls: Call[]; results: Result[] };
  });

const texts = (content: unknown): string[] => (typeof content === 'string' ? [content] : (content as Json[]).filter((b) => b.type === 'text').map((b) => b.text as string));
const joined = (content: unknown): string => texts(content).join('\n\n');

/** True when every needle occurs in the haystack, in order, without overlapping. */
function inOrder(haystack: string, needles: string[]): boolean {
  let at = 0;
  for (const needle of needles) {
    const found = haystack.indexOf(needle, at);
    if (found === -1) return false;
    at = found + needle.length;
  }
  return true;
}

describe('round trips', () => {
  it('Anthropic request → chat → Anthropic request keeps every text, tool call, tool result and tool', () => {
    fc.assert(
      fc.property(anthropicRequest, fc.boolean(), ({ body, calls, results }, reasoning) => {
        const chat = messagesToChatRequest(body, { model: 'gpt-4o', stream: true, includeUsage: true, reasoning });
        const back = chatToMessagesRequest(chat, { model: 'claude-sonnet-4-5', stream: true });
        const messages = back.messages as Json[];

        // Roles alternate, as Anthropic requires.
        messages.forEach((message, i) => assert.notEqual(message.role, messages[i - 1]?.role));
        const blocks = messages.flatMap((message) => (typeof message.content === 'string' ? [{ type: 'text', text: message.content }] : (message.content as Json[])));

        const systemTexts = [...(body.system === undefined ? [] : texts(body.system)), ...(body.messages as Json[]).filter((m) => m.role === 'system').map((m) => m.content as string)];
        assert.ok(inOrder((back.system as string | undefined) ?? '', systemTexts), 'system texts kept in order');

        const conversationTexts = (body.messages as Json[]).filter((m) => m.role !== 'system').flatMap((m) => texts(m.content));
        const finalTexts = blocks.filter((b) => b.type === 'text').map((b) => b.text as string).join('\u0000');
        assert.ok(inOrder(finalTexts, conversationTexts), 'conversation texts kept in order');

        assert.deepEqual(blocks.filter((b) => b.type === 'tool_use').map(({ id, name, input }) => ({ id, name, input })), calls);
        assert.deepEqual(
          blocks.filter((b) => b.type === 'tool_result').map((b) => ({ id: b.tool_use_id, content: b.content })),
          results.map((r) => ({ id: r.tool_use_id, content: (r.is_error === true ? TOOL_ERROR_PREFIX : '') + joined(r.content) })),
        );

        const tools = (body.tools as Json[] | undefined) ?? [];
        assert.deepEqual(back.tools, tools.length === 0 ? undefined : tools.map(({ name, description, input_schema }) => ({ name, ...(description === undefined ? {} : { description }), input_schema })));
        assert.deepEqual(back.tool_choice, tools.length === 0 ? undefined : body.tool_choice);
        assert.equal(back.max_tokens, body.max_tokens);
        assert.equal(back.temperature, body.temperature);
        assert.deepEqual(back.stop_sequences, body.stop_sequences);
      }),
      RUNS,
    );
  });

  const usage = fc
    .record({ prompt: fc.nat({ max: 1_000_000 }), completion: fc.nat({ max: 100_000 }), cachedShare: fc.double({ min: 0, max: 1, noNaN: true }) })
    .map(({ prompt, completion, cachedShare }) => {
      const cached = Math.floor(prompt * cachedShare);
      return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } };
    });
  const toolCalls = fc.array(fc.record({ name: toolName, input: toolInput }), { maxLength: 3 });

  it('chat completion → Anthropic message → chat completion keeps text, tool calls and usage', () => {
    fc.assert(
      fc.property(fc.option(text, { nil: null }), toolCalls, usage, fc.constantFrom('stop', 'length', 'content_filter'), (content, made, used, finish) => {
        const calls = made.map((call, i) => ({ id: `call_${i}`, type: 'function', function: { name: call.name, arguments: JSON.stringify(call.input) } }));
        const finishReason = calls.length > 0 && finish === 'stop' ? 'tool_calls' : finish;
        const chat = {
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 1,
          model: 'gpt-4o',
          choices: [{ index: 0, message: { role: 'assistant', content, refusal: null, ...(calls.length > 0 ? { tool_calls: calls } : {}) }, finish_reason: finishReason, logprobs: null }],
          usage: used,
        };
        const back = messageToChatCompletion(chatCompletionToMessage(chat, 'claude-x'), 'gpt-4o');
        const choice = (back.choices as Json[])[0]!;
        const message = choice.message as Json;
        assert.equal(message.content ?? '', content ?? '');
        assert.deepEqual(
          ((message.tool_calls as Json[] | undefined) ?? []).map((call) => ({ id: call.id, name: (call.function as Json).name, input: JSON.parse((call.function as Json).arguments as string) })),
          made.map((call, i) => ({ id: `call_${i}`, ...call })),
        );
        assert.equal(choice.finish_reason, finishReason);
        assert.deepEqual(back.usage, { prompt_tokens: used.prompt_tokens, completion_tokens: used.completion_tokens, total_tokens: used.total_tokens, prompt_tokens_details: used.prompt_tokens_details });
      }),
      RUNS,
    );
  });

  /** A string cut at arbitrary points into fragments (some may be empty, as upstreams send). */
  const fragments = (whole: fc.Arbitrary<string>): fc.Arbitrary<string[]> =>
    fc.tuple(whole, fc.array(fc.nat(), { maxLength: 4 })).map(([value, cuts]) => {
      const points = [...new Set(cuts.map((cut) => cut % (value.length + 1)))].sort((a, b) => a - b);
      return [0, ...points].map((from, i, all) => value.slice(from, all[i + 1] ?? value.length));
    });
  const segment = fc.oneof(
    fc.record({ kind: fc.constant('text' as const), parts: fragments(text) }),
    fc.record({ kind: fc.constant('tool' as const), name: toolName, parts: fragments(toolInput.map((input) => JSON.stringify(input))), headerCarriesArgs: fc.boolean() }),
  );

  it('chat stream → Anthropic events → chat stream keeps text, tool-call arguments and usage', () => {
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), usage, fc.boolean(), (segments, used, roleChunk) => {
        const chunks: Json[] = roleChunk ? [chatChunk({ role: 'assistant', content: '' })] : [];
        let expectedText = '';
        const expectedCalls: { id: string; name: string; arguments: string }[] = [];
        for (const seg of segments) {
          if (seg.kind === 'text') {
            expectedText += seg.parts.join('');
            chunks.push(...seg.parts.map((part) => chatChunk({ content: part })));
            continue;
          }
          const index = expectedCalls.length;
          const id = `call_${index}`;
          expectedCalls.push({ id, name: seg.name, arguments: seg.parts.join('') });
          const [first, ...rest] = seg.parts;
          const header = { index, id, type: 'function', function: { name: seg.name, arguments: seg.headerCarriesArgs ? first : '' } };
          chunks.push(chatChunk({ tool_calls: [header] }));
          const more = seg.headerCarriesArgs ? rest : seg.parts;
          chunks.push(...more.map((part) => chatChunk({ tool_calls: [{ index, function: { arguments: part } }] })));
        }
        chunks.push(chatChunk({}, expectedCalls.length > 0 ? 'tool_calls' : 'stop'));
        chunks.push({ id: 'chatcmpl-7', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [], usage: used });

        const there = new ChatToMessagesStream('claude-x');
        const sse = chunks.map((chunk) => there.push(chunk)).join('') + there.finish();
        const events = anthropicEvents(sse);
        const message = accumulateMessage(events);
        assert.equal(message.stopReason, expectedCalls.length > 0 ? 'tool_use' : 'end_turn');

        const back = new MessagesToChatStream('gpt-4o', true);
        const out = events.map((event) => back.push(event)).join('') + back.finish();
        const { chunks: result, done } = chatChunks(out);
        assert.equal(done, true);
        const chat = accumulateChat(result);
        assert.equal(chat.content, expectedText);
        assert.deepEqual(chat.toolCalls, expectedCalls);
        assert.equal(chat.finishReason, expectedCalls.length > 0 ? 'tool_calls' : 'stop');
        assert.deepEqual(chat.usage, used);
      }),
      RUNS,
    );
  });
});
