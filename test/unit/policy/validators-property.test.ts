import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ChatDefaults } from '../../../src/config/index.js';
import { GatewayError } from '../../../src/errors/index.js';
import { validateBody } from '../../../src/http/validate.js';
import { apiChatBody, buildUpstreamChat, type PersonaSetting } from '../../../src/policy/api-chat-request.js';
import type { EndpointKind } from '../../../src/policy/endpoints.js';
import { prepareV1Body, type KeyPolicy, type V1BodyPolicy } from '../../../src/policy/v1-body.js';

// The request validators take whatever a client sends: a valid result, or a 400 naming the
// field — never a crash (a TypeError here would be a 500 for a bad request).

const DEFAULTS: ChatDefaults = { botDesc: 'You are helpful.', model: 'gpt-4o-mini', maxTokens: 512, temperature: 0.9, topP: 1, frequencyPenalty: 0, presencePenalty: 0.6 };
const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function', 'wizard', ''];
const MODELS = ['gpt-4o-mini', 'o3', 'gpt-5', 'gpt-3.5-turbo-instruct', 'alias', '', 'x\r\ny'];

const anyValue = fc.jsonValue({ maxDepth: 3 });
const message = fc.oneof(
  { arbitrary: fc.record({ role: fc.oneof(fc.constantFrom(...ROLES), anyValue), content: fc.oneof(fc.string(), fc.array(anyValue, { maxLength: 3 }), fc.constant(null), anyValue), name: fc.string() }, { requiredKeys: [] }), weight: 5 },
  { arbitrary: anyValue, weight: 1 },
);
const number = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(0, 1, 2, -2, 0.5, 512, -1, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER));
const field = <T>(arbitrary: fc.Arbitrary<T>) => fc.oneof({ arbitrary, weight: 4 }, { arbitrary: anyValue, weight: 1 });

/** Bodies near the real shape (every field sometimes right, sometimes wrong), and anything at all. */
const chatLike = fc.oneof(
  {
    arbitrary: fc.record(
      {
        prompt: field(fc.string()),
        messages: field(fc.array(message, { maxLength: 4 })),
        model: field(fc.constantFrom(...MODELS)),
        max_tokens: field(number),
        max_completion_tokens: field(number),
        temperature: field(number),
        top_p: field(number),
        frequency_penalty: field(number),
        presence_penalty: field(number),
        stream: field(fc.boolean()),
        stream_options: field(fc.record({ include_usage: field(fc.boolean()) }, { requiredKeys: [] })),
        instructions: field(fc.string()),
        input: field(fc.string()),
        extra: anyValue,
      },
      { requiredKeys: [] },
    ),
    weight: 5,
  },
  { arbitrary: anyValue, weight: 1 },
);

describe('/api/chat body validator (property)', () => {
  it('returns a body buildUpstreamChat can use, or a 400 invalid_request whose message starts with the field it names', () => {
    const persona = fc.record({ text: fc.string(), mode: fc.constantFrom<PersonaSetting['mode']>('prepend', 'replace', 'off') });
    fc.assert(
      fc.property(chatLike, persona, (body, setting) => {
        let valid;
        try {
          valid = validateBody(apiChatBody, body);
        } catch (error) {
          assert.ok(error instanceof GatewayError, `not a GatewayError: ${(error as Error)?.stack ?? String(error)}`);
          assert.equal(error.status, 400);
          assert.equal(error.code, 'invalid_request');
          if (error.param !== null) assert.ok(error.message.startsWith(`${error.param}: `), error.message);
          assert.ok(error.message.length > 0 && error.message.length < 500, error.message);
          return;
        }
        const outgoing = buildUpstreamChat(valid, DEFAULTS, setting, valid.model ?? DEFAULTS.model);
        assert.equal(outgoing.model, valid.model ?? DEFAULTS.model);
        assert.ok(outgoing.path === '/chat/completions' || outgoing.path === '/completions');
        assert.doesNotThrow(() => JSON.stringify(outgoing.body));
      }),
      { numRuns: 1000 },
    );
  });

  it('names the wrong field: a bad temperature says "temperature: must be a number from 0 to 2"', () => {
    assert.throws(() => validateBody(apiChatBody, { prompt: 'Hi', temperature: 'hot' }), (error: GatewayError) => error.message === 'temperature: must be a number from 0 to 2' && error.param === 'temperature');
    assert.throws(() => validateBody(apiChatBody, { messages: [{ role: 'wizard' }] }), (error: GatewayError) => error.param === 'messages[0].role');
  });
});

describe('/v1 body preparation (property)', () => {
  const kind = fc.constantFrom<EndpointKind>('chat', 'completions', 'embeddings', 'responses', 'other');
  const keyPolicy: fc.Arbitrary<KeyPolicy | undefined> = fc.option(
    fc.record({
      persona: fc.option(fc.record({ text: fc.string(), mode: fc.constantFrom<'prepend' | 'replace' | 'off'>('prepend', 'replace', 'off') }), { nil: undefined }),
      defaults: fc.option(fc.record({ model: fc.constantFrom(...MODELS.filter((m) => m !== '')), temperature: fc.double({ min: 0, max: 2, noNaN: true }), max_tokens: fc.integer({ min: 1, max: 4096 }) }, { requiredKeys: [] }), { nil: undefined }),
      maxTokensCeiling: fc.option(fc.integer({ min: 1, max: 4096 }), { nil: undefined }),
    }),
    { nil: undefined },
  );
  const policy: fc.Arbitrary<V1BodyPolicy> = fc.record({
    modelAlias: fc.constantFrom<Record<string, string>>({}, { alias: 'gpt-4o' }, { 'gpt-4o-mini': 'o3' }),
    defaults: fc.option(fc.constant(DEFAULTS), { nil: undefined }),
    key: keyPolicy,
    includeUsage: fc.boolean().map((accept) => () => accept),
  });

  it('never throws; forwards the caller’s own bytes when nothing applies, else valid JSON with the changes applied', () => {
    fc.assert(
      fc.property(kind, chatLike, policy, (endpoint, body, rules) => {
        const raw = Buffer.from(JSON.stringify(body));
        const parsed = JSON.parse(raw.toString('utf8')) as unknown;
        const result = prepareV1Body(endpoint, raw, parsed, rules);
        if (Buffer.isBuffer(result.body)) {
          assert.equal(result.body, raw, 'unchanged bodies are the same bytes');
        } else {
          const sent = JSON.parse(result.body) as Record<string, unknown>;
          if (result.usageInjected) assert.equal((sent.stream_options as { include_usage?: unknown }).include_usage, true);
          const ceiling = rules.key?.maxTokensCeiling;
          const generative = endpoint === 'chat' || endpoint === 'completions' || endpoint === 'responses';
          if (ceiling !== undefined && generative) {
            for (const name of ['max_tokens', 'max_completion_tokens', 'max_output_tokens']) {
              const value = sent[name];
              if (typeof value === 'number' && !Number.isNaN(value)) assert.ok(value <= ceiling, `${name} ${value} > ceiling ${ceiling}`);
            }
          }
        }
        if (result.model !== undefined) assert.equal(typeof result.model, 'string');
        assert.equal(result.stream, (parsed as { stream?: unknown } | null)?.stream === true && typeof parsed === 'object' && !Array.isArray(parsed));
      }),
      { numRuns: 1000 },
    );
  });
});
