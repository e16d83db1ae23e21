import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../../src/errors/index.js';
import { messagesToChatRequest, TOOL_ERROR_PREFIX, type MessagesToChatOptions } from '../../../src/translate/messages-to-chat.js';

type Json = Record<string, unknown>;

const plain: MessagesToChatOptions = { model: 'gpt-4o', stream: false, includeUsage: false, reasoning: false };
const streaming: MessagesToChatOptions = { model: 'gpt-4o', stream: true, includeUsage: true, reasoning: false };

const bashSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  properties: { command: { type: 'string' } },
  required: ['command'],
  additionalProperties: false,
};

/** What Claude Code 2.1 sends for a non-Claude model name, second turn of a tool round trip (reference/agent-clients.md). */
function claudeCodeRequest(): Json {
  return {
    model: 'gpt-4o',
    max_tokens: 32000,
    stream: true,
    system: [
      { type: 'text', text: 'x-anthropic-billing-header: cc_version=2.1.3' },
      { type: 'text', text: 'You are Claude Code, an interactive CLI tool.', cache_control: { type: 'ephemeral' } },
    ],
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: '<system-reminder>\nAs you answer, use the context below.\n</system-reminder>' },
          { type: 'text', text: '<system-reminder>\ntodo list is empty\n</system-reminder>' },
          { type: 'text', text: 'list the files', cache_control: { type: 'ephemeral' } },
        ],
      },
      { role: 'system', content: 'Respond concisely.' },
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'I should run ls.', signature: 'c2ln' },
          { type: 'text', text: 'Running ls.' },
          { type: 'tool_use', id: 'call_1', name: 'Bash', input: { command: 'ls' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'call_1', content: 'ls: permission denied', is_error: true, cache_control: { type: 'ephemeral' } },
          { type: 'text', text: 'try again' },
        ],
      },
    ],
    tools: [
      { name: 'Bash', description: 'Run a command', input_schema: bashSchema },
      { name: 'WebFetch', description: 'Fetch a URL', input_schema: { type: 'object', properties: {} }, defer_loading: true, cache_control: { type: 'ephemeral' } },
    ],
    metadata: { user_id: '{"device_id":"d","account_uuid":"","session_id":"s"}' },
    thinking: { type: 'adaptive', display: 'omitted' },
    output_config: { effort: 'high' },
    context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
  };
}

function refusal(body: Json, options = plain): GatewayError {
  try {
    messagesToChatRequest(body, options);
  } catch (error) {
    assert.ok(error instanceof GatewayError);
    assert.equal(error.status, 400);
    return error;
  }
  assert.fail('expected a refusal');
}

const user = (content: unknown): Json => ({ role: 'user', content });

describe('messagesToChatRequest', () => {
  it('translates a Claude Code request: system blocks, reminders, the inner system message, a tool round trip with is_error', () => {
    const chat = messagesToChatRequest(claudeCodeRequest(), { model: 'gpt-5', stream: true, includeUsage: true, reasoning: true });
    assert.deepEqual(chat, {
      model: 'gpt-5',
      messages: [
        { role: 'system', content: 'x-anthropic-billing-header: cc_version=2.1.3\n\nYou are Claude Code, an interactive CLI tool.' },
        {
          role: 'user',
          content: '<system-reminder>\nAs you answer, use the context below.\n</system-reminder>\n\n<system-reminder>\ntodo list is empty\n</system-reminder>\n\nlist the files',
        },
        { role: 'system', content: 'Respond concisely.' },
        { role: 'assistant', content: 'Running ls.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'Bash', arguments: '{"command":"ls"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: `${TOOL_ERROR_PREFIX}ls: permission denied` },
        { role: 'user', content: 'try again' },
      ],
      max_completion_tokens: 32000,
      tools: [
        { type: 'function', function: { name: 'Bash', description: 'Run a command', parameters: bashSchema } },
        { type: 'function', function: { name: 'WebFetch', description: 'Fetch a URL', parameters: { type: 'object', properties: {} } } },
      ],
      reasoning_effort: 'high',
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('drops an empty tools list (Claude Code with tools off) and the tool_choice that goes with it', () => {
    const chat = messagesToChatRequest({ ...claudeCodeRequest(), tools: [], tool_choice: { type: 'auto' } }, streaming);
    assert.equal('tools' in chat, false);
    assert.equal('tool_choice' in chat, false);
  });

  it('drops thinking and effort when the upstream model takes no reasoning setting, and uses max_tokens', () => {
    const chat = messagesToChatRequest(claudeCodeRequest(), streaming);
    assert.equal('reasoning_effort' in chat, false);
    assert.equal(chat.max_tokens, 32000);
    assert.equal('max_completion_tokens' in chat, false);
  });

  it('maps a thinking budget to an effort: low < 4096 ≤ medium < 16384 ≤ high', () => {
    const effort = (budget: number): unknown =>
      messagesToChatRequest({ max_tokens: 40000, messages: [user('hi')], thinking: { type: 'enabled', budget_tokens: budget } }, { ...plain, reasoning: true }).reasoning_effort;
    assert.deepEqual([1024, 4095, 4096, 16383, 16384, 31999].map(effort), ['low', 'low', 'medium', 'medium', 'high', 'high']);
    const disabled = messagesToChatRequest({ max_tokens: 10, messages: [user('hi')], thinking: { type: 'disabled' }, output_config: { effort: 'low' } }, { ...plain, reasoning: true });
    assert.equal('reasoning_effort' in disabled, false);
  });

  it('translates images, both sources, keeping the user text beside them as parts', () => {
    const chat = messagesToChatRequest(
      {
        messages: [
          user([
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
            { type: 'text', text: 'what is this?' },
          ]),
        ],
      },
      plain,
    );
    assert.deepEqual(chat.messages, [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          { type: 'text', text: 'what is this?' },
        ],
      },
    ]);
  });

  it('puts tool messages before the rest of the user turn, whatever the block order', () => {
    const chat = messagesToChatRequest(
      {
        messages: [
          user('go'),
          { role: 'assistant', content: [{ type: 'tool_use', id: 'a', name: 'f', input: {} }, { type: 'tool_use', id: 'b', name: 'g', input: { x: [1] } }] },
          user([
            { type: 'text', text: 'both done' },
            { type: 'tool_result', tool_use_id: 'a', content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }] },
            { type: 'tool_result', tool_use_id: 'b' },
          ]),
        ],
      },
      plain,
    );
    assert.deepEqual((chat.messages as Json[]).slice(1), [
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'a', type: 'function', function: { name: 'f', arguments: '{}' } },
          { id: 'b', type: 'function', function: { name: 'g', arguments: '{"x":[1]}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'a', content: 'one\n\ntwo' },
      { role: 'tool', tool_call_id: 'b', content: '' },
      { role: 'user', content: 'both done' },
    ]);
  });

  it('maps tool_choice and disable_parallel_tool_use', () => {
    const tools = [{ name: 'f', input_schema: { type: 'object' } }];
    const choice = (tool_choice: Json): Json => messagesToChatRequest({ messages: [user('x')], tools, tool_choice }, plain);
    assert.equal(choice({ type: 'auto' }).tool_choice, 'auto');
    assert.equal(choice({ type: 'any' }).tool_choice, 'required');
    assert.equal(choice({ type: 'none' }).tool_choice, 'none');
    assert.deepEqual(choice({ type: 'tool', name: 'f' }).tool_choice, { type: 'function', function: { name: 'f' } });
    assert.equal(choice({ type: 'any', disable_parallel_tool_use: true }).parallel_tool_calls, false);
  });

  it('copies sampling parameters and stop sequences', () => {
    const chat = messagesToChatRequest({ messages: [user('x')], max_tokens: 100, temperature: 0.2, top_p: 0.9, stop_sequences: ['\n\nHuman:', 'END'] }, plain);
    assert.deepEqual(chat, { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], max_tokens: 100, temperature: 0.2, top_p: 0.9, stop: ['\n\nHuman:', 'END'] });
  });

  it('maps structured output (output_config.format) to a strict json_schema response format', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false };
    const chat = messagesToChatRequest({ messages: [user('x')], output_config: { format: { type: 'json_schema', schema } } }, plain);
    assert.deepEqual(chat.response_format, { type: 'json_schema', json_schema: { name: 'response', schema, strict: true } });
  });

  it('drops an assistant turn that only held thinking', () => {
    const chat = messagesToChatRequest({ messages: [user('a'), { role: 'assistant', content: [{ type: 'redacted_thinking', data: 'x' }] }, user('b')] }, plain);
    assert.deepEqual(chat.messages, [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }]);
  });

  describe('refuses, naming what cannot be translated', () => {
    const cases: [string, Json, string, RegExp][] = [
      ['a document block', { messages: [user([{ type: 'text', text: 'x' }, { type: 'document', source: {} }])] }, 'messages[0].content[1].type', /Content block type "document" cannot be sent to an OpenAI-compatible upstream/],
      ['a search_result block', { messages: [user([{ type: 'search_result', source: 's', title: 't', content: [] }])] }, 'messages[0].content[0].type', /"search_result"/],
      ['an image inside a tool_result', { messages: [user([{ type: 'tool_result', tool_use_id: 'a', content: [{ type: 'image', source: {} }] }])] }, 'messages[0].content[0].content[0].type', /"image" inside a tool_result/],
      ['a server_tool_use block', { messages: [{ role: 'assistant', content: [{ type: 'server_tool_use', id: 's', name: 'web_search', input: {} }] }, user('x')] }, 'messages[0].content[0].type', /"server_tool_use"/],
      ['an image block in system', { system: [{ type: 'image', source: {} }], messages: [user('x')] }, 'system[0].type', /"image"/],
      ['a file image source', { messages: [user([{ type: 'image', source: { type: 'file', file_id: 'f' } }])] }, 'messages[0].content[0].source.type', /Image source type "file"/],
      ['a server tool', { messages: [user('x')], tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, 'tools[0].type', /Tool type "web_search_20250305" is an Anthropic server tool/],
      ['a bash tool', { messages: [user('x')], tools: [{ type: 'bash_20250124', name: 'bash' }] }, 'tools[0].type', /"bash_20250124"/],
      ['top_k', { messages: [user('x')], top_k: 5 }, 'top_k', /Parameter "top_k" cannot be sent.*top-k/],
      ['mcp_servers', { messages: [user('x')], mcp_servers: [{ type: 'url', url: 'https://mcp', name: 'm' }] }, 'mcp_servers', /"mcp_servers"/],
      ['container', { messages: [user('x')], container: 'c' }, 'container', /"container"/],
      ['an unknown parameter', { messages: [user('x')], frobnicate: 1 }, 'frobnicate', /Parameter "frobnicate"/],
      ['an unknown field of a block', { messages: [user([{ type: 'text', text: 'x', colour: 'red' }])] }, 'messages[0].content[0].colour', /Field "messages\[0\]\.content\[0\]\.colour"/],
      ['an unknown field of a tool', { messages: [user('x')], tools: [{ name: 'f', input_schema: {}, input_examples: [] }] }, 'tools[0].input_examples', /input_examples/],
      ['a prefill', { messages: [user('x'), { role: 'assistant', content: '{"a":' }] }, 'messages[1]', /final assistant message/],
      ['an unknown thinking type', { messages: [user('x')], thinking: { type: 'sometimes' } }, 'thinking.type', /"sometimes"/],
      ['a text output format', { messages: [user('x')], output_config: { format: { type: 'grammar' } } }, 'output_config.format.type', /"grammar"/],
    ];
    for (const [name, body, param, message] of cases) {
      it(name, () => {
        const error = refusal(body);
        assert.equal(error.param, param);
        assert.match(error.message, message);
      });
    }
  });

  describe('refuses malformed parts, naming the path', () => {
    const cases: [Json, string][] = [
      [{}, 'messages'],
      [{ messages: 'hi' }, 'messages'],
      [{ messages: [user([{ text: 'no type' }])] }, 'messages[0].content[0].type'],
      [{ messages: [user([{ type: 'text', text: 7 }])] }, 'messages[0].content[0].text'],
      [{ messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role'],
      [{ messages: [user('x')], max_tokens: -1 }, 'max_tokens'],
      [{ messages: [user('x')], max_tokens: 1.5 }, 'max_tokens'],
      [{ messages: [user('x')], temperature: 'hot' }, 'temperature'],
      [{ messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 'a', name: 'f', input: 'ls' }] }, user('x')] }, 'messages[0].content[0].input'],
      [{ messages: [user([{ type: 'tool_result', tool_use_id: 'a', is_error: 'yes' }])] }, 'messages[0].content[0].is_error'],
      [{ messages: [user('x')], tools: [{ name: 'f' }] }, 'tools[0].input_schema'],
      [{ messages: [user('x')], stop_sequences: ['a', 1] }, 'stop_sequences[1]'],
    ];
    for (const [body, param] of cases) {
      it(param, () => assert.equal(refusal(body).param, param));
    }
  });
});
