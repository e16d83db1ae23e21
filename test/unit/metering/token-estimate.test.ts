import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import {
  MAX_TOKENIZED_BYTES,
  countTokens,
  encodingForModel,
  estimateChatPromptTokens,
  estimateCompletionTokens,
  estimatePromptTokens,
} from '../../../src/metering/token-estimate.js';

/** Reference counts straight from the encodings, for strings short enough to tokenize whole. */
const exact = {
  o200k: (text: string) => o200k.countTokens(text),
  cl100k: (text: string) => cl100k.countTokens(text),
};

/** The example from OpenAI's cookbook "How to count tokens with tiktoken". */
const COOKBOOK_MESSAGES = [
  {
    role: 'system',
    content: 'You are a helpful, pattern-following assistant that translates corporate jargon into plain English.',
  },
  { role: 'system', name: 'example_user', content: 'New synergies will help drive top-line growth.' },
  { role: 'system', name: 'example_assistant', content: 'Things working well together will increase revenue.' },
  {
    role: 'system',
    name: 'example_user',
    content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
  },
  {
    role: 'system',
    name: 'example_assistant',
    content: "Let's talk later when we're less busy about how to do better.",
  },
  {
    role: 'user',
    content: "This late pivot means we don't have time to boil the ocean for the client deliverable.",
  },
];

describe('encodingForModel', () => {
  const o200kModels = [
    'gpt-4o',
    'gpt-4o-2024-08-06',
    'gpt-4o-mini',
    'gpt-4.1',
    'gpt-4.1-nano',
    'gpt-4.5-preview',
    'o1',
    'o1-mini',
    'o3',
    'o3-mini-2025-01-31',
    'o4-mini',
    'gpt-5',
    'gpt-5-mini',
    'gpt-5.1',
    'chatgpt-4o-latest',
    'ft:gpt-4o-mini-2024-07-18:acme::abc123',
  ];
  const cl100kModels = [
    'gpt-4',
    'gpt-4-0613',
    'gpt-4-turbo',
    'gpt-4-32k',
    'gpt-3.5-turbo',
    'gpt-3.5-turbo-instruct',
    'gpt-35-turbo',
    'davinci-002',
    'babbage-002',
    'text-embedding-ada-002',
    'text-embedding-3-small',
    'text-embedding-3-large',
    'ft:gpt-3.5-turbo-0125:acme::abc123',
    'ft:davinci-002:acme::abc123',
  ];

  it('uses o200k_base for gpt-4o, gpt-4.1, gpt-4.5, the o-series, gpt-5 and their fine-tunes', () => {
    for (const model of o200kModels) assert.equal(encodingForModel(model), 'o200k_base', model);
  });

  it('uses cl100k_base for gpt-4, gpt-3.5, Azure gpt-35-turbo, davinci/babbage-002 and embeddings', () => {
    for (const model of cl100kModels) assert.equal(encodingForModel(model), 'cl100k_base', model);
  });

  it('falls back to o200k_base for models with their own tokenizers and for nonsense', () => {
    for (const model of ['deepseek-chat', 'qwen2.5-72b-instruct', 'llama-3.1-70b', 'gpt-oss-120b', '', 'o10']) {
      assert.equal(encodingForModel(model), 'o200k_base', model);
    }
  });

  it('ignores case and a provider prefix', () => {
    assert.equal(encodingForModel('GPT-4-Turbo'), 'cl100k_base');
    assert.equal(encodingForModel('openai/gpt-3.5-turbo'), 'cl100k_base');
    assert.equal(encodingForModel('openai/gpt-4o'), 'o200k_base');
  });
});

describe('countTokens', () => {
  it('counts "hello world" as 2 tokens in both encodings', () => {
    assert.equal(countTokens('hello world', 'gpt-4o'), 2);
    assert.equal(countTokens('hello world', 'gpt-4'), 2);
  });

  it('matches the encodings on the cookbook comparison strings', () => {
    const cases: [string, number, number][] = [
      ['tiktoken is great!', 6, 6],
      ['antidisestablishmentarianism', 6, 6],
      ['2 + 2 = 4', 7, 7],
      ['お誕生日おめでとう', 8, 9],
    ];
    for (const [text, o200kCount, cl100kCount] of cases) {
      assert.equal(countTokens(text, 'gpt-4o'), o200kCount, text);
      assert.equal(countTokens(text, 'gpt-4'), cl100kCount, text);
      assert.equal(o200kCount, exact.o200k(text));
      assert.equal(cl100kCount, exact.cl100k(text));
    }
  });

  it('is 0 for the empty string', () => {
    assert.equal(countTokens('', 'gpt-4o'), 0);
  });

  it('counts a special token typed as text as ordinary characters instead of throwing', () => {
    const text = 'a <|endoftext|> b <|im_start|>';
    assert.ok(countTokens(text, 'gpt-4o') > 4);
    assert.ok(countTokens(text, 'gpt-4') > 4);
  });

  it('does not throw on lone surrogates', () => {
    assert.ok(countTokens('\ud800 x \udc00', 'gpt-4o') > 0);
  });

  it('counts estimateCompletionTokens like countTokens', () => {
    const text = 'The quick brown fox jumps over the lazy dog.';
    assert.equal(estimateCompletionTokens(text, 'gpt-4o'), exact.o200k(text));
    assert.equal(estimateCompletionTokens(text, 'gpt-3.5-turbo'), exact.cl100k(text));
  });
});

describe('countTokens bounds its work', () => {
  it('estimates text past the byte budget as ceil(UTF-8 bytes / 4) without tokenizing it', () => {
    const ascii = 'a'.repeat(2_000_000);
    assert.equal(countTokens(ascii, 'gpt-4o'), 500_000);
    const cjk = '漢'.repeat(MAX_TOKENIZED_BYTES);
    assert.equal(countTokens(cjk, 'gpt-4o'), Math.ceil((cjk.length * 3) / 4));
  });

  it('tokenizes text just under the budget exactly', () => {
    const text = 'hello world '.repeat(Math.floor((MAX_TOKENIZED_BYTES - 64) / 12));
    assert.equal(countTokens(text, 'gpt-4o'), exact.o200k(text));
  });

  it('counts a 100k-letter run in bounded time (the tokenizer alone takes ~14 s), within 1%', () => {
    const started = performance.now();
    const count = countTokens('a'.repeat(100_000), 'gpt-4o');
    assert.ok(performance.now() - started < 2_000, 'took too long');
    // 8 letters per token in o200k, as 'a'.repeat(800) shows exactly.
    assert.equal(exact.o200k('a'.repeat(800)), 100);
    assert.ok(Math.abs(count - 12_500) <= 125, `got ${count}`);
  });

  it('counts long runs without spaces that have word boundaries exactly: compact JSON, URLs, base64', () => {
    const json = JSON.stringify(
      Array.from({ length: 60 }, (_, i) => ({ name: `item${i}`, kind: 'widget', tags: ['alpha', 'beta'], ok: true })),
    );
    const url = `https://example.com/${'some/long/path/segment/'.repeat(20)}index.html?query=value&other=thing`;
    const base64 = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 256)).toString('base64');
    for (const text of [json, url, base64]) {
      assert.equal(countTokens(text, 'gpt-4o'), exact.o200k(text));
      assert.equal(countTokens(text, 'gpt-4'), exact.cl100k(text));
    }
  });

  it('never cuts a surrogate pair when it splits a long run', () => {
    const text = `x${'😀'.repeat(100)}`;
    assert.equal(countTokens(text, 'gpt-4o'), exact.o200k(text));
    assert.equal(countTokens(text, 'gpt-4'), exact.cl100k(text));
  });

  it('shares one budget across the strings of a request', () => {
    const half = 'hello world '.repeat(Math.floor(MAX_TOKENIZED_BYTES / 12 / 2) + 100);
    const messages = [
      { role: 'user', content: half },
      { role: 'user', content: half },
    ];
    const role = exact.o200k('user');
    const expected = 3 + (3 + role + exact.o200k(half)) + (3 + role + Math.ceil(half.length / 4));
    assert.equal(estimateChatPromptTokens(messages, 'gpt-4o'), expected);
  });
});

describe('estimateChatPromptTokens', () => {
  it('reproduces the cookbook example: 129 tokens with cl100k, 124 with o200k', () => {
    assert.equal(estimateChatPromptTokens(COOKBOOK_MESSAGES, 'gpt-3.5-turbo-0613'), 129);
    assert.equal(estimateChatPromptTokens(COOKBOOK_MESSAGES, 'gpt-4o'), 124);
  });

  it('counts 3 per message, every field, 1 per name and 3 for the reply primer', () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', name: 'alice', content: 'What is the capital of France?' },
    ];
    const t = exact.o200k;
    const first = t('system') + t('Be brief.');
    const second = t('user') + t('alice') + 1 + t('What is the capital of France?');
    const expected = 3 * 2 + first + second + 3;
    assert.equal(estimateChatPromptTokens(messages, 'gpt-4o'), expected);
  });

  it('counts only the reply primer for no messages', () => {
    assert.equal(estimateChatPromptTokens([], 'gpt-4o'), 3);
  });

  it('counts text parts and a flat 85 per image part', () => {
    const messages = [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in this picture?' },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'high' } },
          { type: 'text', text: 'And this one?' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
        ],
      },
    ];
    const t = exact.o200k;
    const expected = 3 + t('user') + t('What is in this picture?') + 85 + t('And this one?') + 85 + 3;
    assert.equal(estimateChatPromptTokens(messages, 'gpt-4o'), expected);
  });

  it("counts tool calls' function names and arguments, and a tool result's fields", () => {
    const args = '{"city":"Paris"}';
    const messages = [
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: args } }],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '18°C, sunny' },
    ];
    const t = exact.o200k;
    const expected =
      3 + t('assistant') + t('get_weather') + t(args) + (3 + t('tool') + t('call_1') + t('18°C, sunny')) + 3;
    assert.equal(estimateChatPromptTokens(messages, 'gpt-4o'), expected);
  });

  it('counts what it can of malformed messages', () => {
    const t = exact.o200k;
    const messages = [
      null,
      42,
      'hello',
      ['x'],
      { role: 7, content: { text: 'not parts' } },
      { role: 'user', content: 'hi' },
    ];
    const expected = 3 + 3 + (3 + t('user') + t('hi'));
    assert.equal(estimateChatPromptTokens(messages, 'gpt-4o'), expected);
  });

  it('is 0 when messages is not an array', () => {
    for (const value of [undefined, null, 'hello', 42, { role: 'user', content: 'hi' }]) {
      assert.equal(estimateChatPromptTokens(value, 'gpt-4o'), 0);
    }
  });
});

describe('estimatePromptTokens', () => {
  const t = exact.o200k;

  it('adds function tools to chat messages, counted as JSON text', () => {
    const fn = {
      name: 'get_weather',
      description: 'Weather for a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } } },
    };
    const messages = [{ role: 'user', content: 'Weather in Paris?' }];
    const body = { model: 'gpt-4o', messages, tools: [{ type: 'function', function: fn }] };
    const expected = estimateChatPromptTokens(messages, 'gpt-4o') + t(JSON.stringify(fn));
    assert.equal(estimatePromptTokens('chat', body, 'gpt-4o'), expected);
  });

  it('counts a completions prompt given as a string, strings or token arrays', () => {
    const prompt = (value: unknown) => estimatePromptTokens('completions', { prompt: value }, 'gpt-4o');
    assert.equal(prompt('Say this is a test'), t('Say this is a test'));
    assert.equal(prompt(['one', 'two three']), t('one') + t('two three'));
    assert.equal(prompt([1, 2, 3, 4]), 4);
    assert.equal(
      prompt([
        [1, 2],
        [3, 4, 5],
      ]),
      5,
    );
  });

  it('counts embeddings input like a completions prompt, with the embedding model encoding', () => {
    const body = { model: 'text-embedding-3-small', input: ['お誕生日おめでとう', 'hello world'] };
    assert.equal(estimatePromptTokens('embeddings', body, 'text-embedding-3-small'), 9 + 2);
    assert.equal(estimatePromptTokens('embeddings', { input: [[5, 6, 7]] }, 'text-embedding-3-small'), 3);
  });

  it('counts a Responses string input and instructions as user and system messages', () => {
    const body = { instructions: 'Talk like a pirate.', input: 'Are semicolons optional?' };
    const expected = 3 + (3 + t('system') + t('Talk like a pirate.')) + (3 + t('user') + t('Are semicolons optional?'));
    assert.equal(estimatePromptTokens('responses', body, 'gpt-4o'), expected);
  });

  it('counts Responses items: message text and images, function calls and their outputs', () => {
    const body = {
      input: [
        {
          type: 'message',
          id: 'msg_1',
          status: 'completed',
          role: 'user',
          content: [
            { type: 'input_text', text: 'Describe this.' },
            { type: 'input_image', image_url: 'https://example.com/a.png' },
          ],
        },
        { type: 'function_call', call_id: 'c1', name: 'lookup', arguments: '{"q":"x"}' },
        { type: 'function_call_output', call_id: 'c1', output: 'found it' },
        { type: 'reasoning', id: 'rs_1', summary: [] },
      ],
    };
    const expected =
      3 + (3 + t('user') + t('Describe this.') + 85) + (3 + t('lookup') + t('{"q":"x"}')) + (3 + t('found it'));
    assert.equal(estimatePromptTokens('responses', body, 'gpt-4o'), expected);
  });

  it('is 0 for other endpoints and for bodies that are not objects', () => {
    assert.equal(estimatePromptTokens('other', { prompt: 'hello' }, 'gpt-4o'), 0);
    for (const body of [undefined, null, 'text', 3, ['a']]) {
      assert.equal(estimatePromptTokens('chat', body, 'gpt-4o'), 0);
    }
  });

  it('never throws on arbitrary bodies and always returns a non-negative integer', () => {
    const endpoints = ['chat', 'completions', 'embeddings', 'responses', 'other'] as const;
    fc.assert(
      fc.property(fc.constantFrom(...endpoints), fc.anything({ withObjectString: true }), (endpoint, body) => {
        for (const value of [body, { messages: body, prompt: body, input: body, tools: body, instructions: body }]) {
          const count = estimatePromptTokens(endpoint, value, 'gpt-4o');
          assert.ok(Number.isSafeInteger(count) && count >= 0, `${count}`);
        }
        assert.ok(estimateChatPromptTokens([body, { role: 'user', content: body, tool_calls: body }], 'gpt-4') >= 3);
      }),
      { numRuns: 300 },
    );
  });

  it('survives tool parameters JSON cannot encode', () => {
    const cyclic: Record<string, unknown> = { type: 'object' };
    cyclic.self = cyclic;
    const body = {
      messages: [{ role: 'user', content: 'hi' }],
      tools: [
        { type: 'function', function: { name: 'f', parameters: cyclic } },
        { type: 'function', function: { name: 'g', parameters: 1n } },
      ],
    };
    assert.equal(estimatePromptTokens('chat', body, 'gpt-4o'), estimateChatPromptTokens(body.messages, 'gpt-4o'));
  });
});
