import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { countTokens, estimatePromptTokens, MAX_TOKENIZED_BYTES, promptByteBound, type EstimateEndpoint } from '../../../src/metering/token-estimate.js';

const require = createRequire(import.meta.url);
const bytes = (text: string): number => Buffer.byteLength(text, 'utf8');
/** One model per encoding: o200k and cl100k. */
const MODELS = ['gpt-4o', 'gpt-4'] as const;

/** Text the tokenizer finds hard or easy: prose, code, any code point (lone surrogates too), long runs it cuts. */
const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.array(fc.constantFrom('the ', 'token ', 'Straße ', '東京 ', '😀', '{"a":1}', '\n\n', '   ', '12345', "don't ", 'http://x.io/?q=1'), { maxLength: 80 }).map((parts) => parts.join('')),
  fc.tuple(fc.constantFrom('a', 'é', '界', '😀', '1', ' ', '\ud800'), fc.integer({ min: 60, max: 400 })).map(([unit, count]) => unit.repeat(count)),
);

describe('a token covers at least one byte', () => {
  it('in every entry of the cl100k and o200k vocabularies', () => {
    for (const name of ['cl100k_base', 'o200k_base']) {
      const ranks = (require(`gpt-tokenizer/bpeRanks/${name}`) as { default: ReadonlyArray<string | readonly number[]> }).default;
      assert.ok(ranks.length > 100_000, name);
      for (let rank = 0; rank < ranks.length; rank += 1) {
        const entry = ranks[rank];
        assert.ok(entry !== undefined && (typeof entry === 'string' ? bytes(entry) : entry.length) >= 1, `${name} rank ${rank}`);
      }
    }
  });

  it('so countTokens never exceeds the UTF-8 bytes of any text, cut into pieces or estimated from its size', () => {
    fc.assert(
      fc.property(text, (value) => {
        for (const model of MODELS) assert.ok(countTokens(value, model) <= bytes(value), `${model}: ${JSON.stringify(value)}`);
      }),
      { numRuns: 300 },
    );
    const past = 'x'.repeat(MAX_TOKENIZED_BYTES + 1);
    assert.equal(countTokens(past, 'gpt-4o'), Math.ceil(bytes(past) / 4));
  });
});

/** Request bodies of every shape the estimate reads, and some it must survive. */
const content = fc.oneof(
  text,
  fc.array(
    fc.oneof(
      text,
      text.map((value) => ({ type: 'text', text: value })),
      fc.constant({ type: 'image_url', image_url: { url: 'x' } }),
      fc.constant({ type: 'input_image', image_url: 'x' }),
      text.map((refusal) => ({ type: 'refusal', refusal })),
      fc.constant(null),
    ),
    { maxLength: 4 },
  ),
  fc.constant(null),
);
const call = fc.record({ name: text, arguments: text });
const message = fc.oneof(
  fc.record({ role: fc.constantFrom('system', 'user', 'assistant', 'tool'), content }, { requiredKeys: ['role'] }),
  fc.record({ role: fc.constant('user'), name: text, content }),
  fc.record({ role: fc.constant('assistant'), content: fc.constant(null), tool_calls: fc.array(call.map((fn) => ({ id: 'c', type: 'function', function: fn })), { maxLength: 3 }) }),
  fc.record({ role: fc.constant('assistant'), function_call: call }),
  fc.anything({ maxDepth: 2 }),
);
const tools = fc.array(fc.record({ type: fc.constant('function'), function: fc.record({ name: text, description: text, parameters: fc.anything({ maxDepth: 2 }) }) }), { maxLength: 2 });
const prompt = fc.oneof(text, fc.array(fc.oneof(text, fc.integer({ min: 0, max: 100_000 }), fc.array(fc.integer({ min: 0, max: 100_000 }), { maxLength: 20 })), { maxLength: 4 }));
const responsesInput = fc.oneof(
  text,
  fc.array(
    fc.oneof(
      fc.record({ role: fc.constantFrom('user', 'assistant', 'developer'), content }),
      call.map((fn) => ({ type: 'function_call', call_id: 'c', ...fn })),
      text.map((output) => ({ type: 'function_call_output', call_id: 'c', output })),
      fc.anything({ maxDepth: 1 }),
    ),
    { maxLength: 4 },
  ),
);
const request: fc.Arbitrary<{ kind: EstimateEndpoint; body: unknown }> = fc.oneof(
  fc.record({ messages: fc.array(message, { maxLength: 5 }), tools, functions: fc.array(call, { maxLength: 1 }) }, { requiredKeys: ['messages'] }).map((body) => ({ kind: 'chat' as const, body })),
  fc.record({ prompt }).map((body) => ({ kind: 'completions' as const, body })),
  fc.record({ input: prompt }).map((body) => ({ kind: 'embeddings' as const, body })),
  fc.record({ instructions: text, input: responsesInput, tools }, { requiredKeys: ['input'] }).map((body) => ({ kind: 'responses' as const, body })),
  fc.record({ kind: fc.constantFrom<EstimateEndpoint>('chat', 'completions', 'embeddings', 'responses', 'other'), body: fc.anything({ maxDepth: 3 }) }),
);

describe('promptByteBound', () => {
  it('is never less than the estimate, for any body, endpoint and encoding', () => {
    fc.assert(
      fc.property(request, ({ kind, body }) => {
        const bound = promptByteBound(kind, body);
        for (const model of MODELS) {
          const estimate = estimatePromptTokens(kind, body, model);
          assert.ok(estimate <= bound, `${model} ${kind}: estimate ${estimate} > bound ${bound} for ${JSON.stringify(body)}`);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('counts the framing the estimate counts: per message, per name, per image, the reply primer', () => {
    const body = {
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', name: 'ann', content: [{ type: 'text', text: 'héllo' }, { type: 'image_url', image_url: { url: 'https://x' } }] },
      ],
    };
    // 3 (primer) + 3 + 6 + 9 + 3 + 4 + 3 + 1 (name) + 6 + 85 (image)
    assert.equal(promptByteBound('chat', body), 123);
    assert.ok(estimatePromptTokens('chat', body, 'gpt-4o') <= 123);
    assert.equal(promptByteBound('other', body), 0);
    assert.equal(promptByteBound('chat', 'not a body'), 0);
  });

  it('never loads an encoding', () => {
    // In a process of its own: the encodings are CommonJS modules loaded on first use.
    const script = `
      import { createRequire } from 'node:module';
      const { promptByteBound } = await import(${JSON.stringify(new URL('../../../src/metering/token-estimate.ts', import.meta.url).href)});
      promptByteBound('chat', { messages: [{ role: 'user', content: 'hello '.repeat(1000) }] });
      promptByteBound('responses', { input: 'hello', tools: [{ type: 'function', name: 'f', parameters: {} }] });
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((path) => path.includes('gpt-tokenizer'));
      process.stdout.write(JSON.stringify(loaded));
    `;
    const output = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('../../..', import.meta.url)) });
    assert.deepEqual(JSON.parse(output), []);
  });
});
