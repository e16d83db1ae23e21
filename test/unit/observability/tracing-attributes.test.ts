import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { operationName, requestErrorType, requestParameters, spanName, upstreamIdentity, usageAttributes, type SpanAttributes } from '../../../src/observability/tracing-attributes.js';
import { traceOf, TRACING_OFF } from '../../../src/observability/tracing.js';

describe('GenAI span attributes', () => {
  it('names the operation by endpoint kind; the Messages API and Responses are chat', () => {
    assert.equal(operationName('chat'), 'chat');
    assert.equal(operationName('messages'), 'chat');
    assert.equal(operationName('responses'), 'chat');
    assert.equal(operationName('completions'), 'text_completion');
    assert.equal(operationName('embeddings'), 'embeddings');
    assert.equal(operationName('other'), undefined);
  });

  it('names spans "{operation} {model}", or "{method} {route}" for other endpoints', () => {
    assert.equal(spanName('chat', 'gpt-4o', 'POST', '/v1/*'), 'chat gpt-4o');
    assert.equal(spanName('embeddings', undefined, 'POST', '/v1/*'), 'embeddings');
    assert.equal(spanName(undefined, undefined, 'GET', '/healthz'), 'GET /healthz');
    assert.equal(spanName(undefined, undefined, 'GET', undefined), 'GET');
  });

  it('tells the provider from the upstream type, and OpenAI-compatible ones by host', () => {
    assert.deepEqual(upstreamIdentity('openai', 'https://api.openai.com/v1'), { provider: 'openai', address: 'api.openai.com', port: 443 });
    assert.deepEqual(upstreamIdentity('azure', 'https://acme.openai.azure.com'), { provider: 'azure.ai.openai', address: 'acme.openai.azure.com', port: 443 });
    assert.deepEqual(upstreamIdentity('anthropic', 'https://api.anthropic.com/v1'), { provider: 'anthropic', address: 'api.anthropic.com', port: 443 });
    assert.equal(upstreamIdentity('openai-compatible', 'https://api.groq.com/openai/v1').provider, 'groq');
    assert.equal(upstreamIdentity('openai-compatible', 'https://api.deepseek.com').provider, 'deepseek');
    assert.equal(upstreamIdentity('openai-compatible', 'https://api.mistral.ai/v1').provider, 'mistral_ai');
    // Not a suffix match on a longer name: "notx.ai" is not xAI.
    assert.equal(upstreamIdentity('openai-compatible', 'https://notx.ai/v1').provider, '_OTHER');
    assert.deepEqual(upstreamIdentity('openai-compatible', 'http://[::1]:11434/v1'), { provider: '_OTHER', address: '::1', port: 11434 });
    assert.equal(upstreamIdentity('openai-compatible', 'http://ollama/v1').port, 80);
  });

  it('reads only the numeric sampling parameters of a body, never its content', () => {
    const attributes: SpanAttributes = {};
    requestParameters('chat', { model: 'm', messages: [{ role: 'user', content: 'secret prompt' }], max_completion_tokens: 100, max_tokens: 7, temperature: 0, top_p: 0.5, seed: 42, n: 2, stream: true, stop: ['secret stop'], user: 'someone' }, attributes);
    assert.deepEqual(attributes, {
      'gen_ai.request.max_tokens': 100,
      'gen_ai.request.temperature': 0,
      'gen_ai.request.top_p': 0.5,
      'gen_ai.request.seed': 42,
      'gen_ai.request.choice.count': 2,
      'gen_ai.request.stream': true,
    });
    const responses: SpanAttributes = {};
    requestParameters('responses', { max_output_tokens: 300, max_tokens: 1, temperature: '0.3' }, responses);
    assert.deepEqual(responses, { 'gen_ai.request.max_tokens': 300 });
    const none: SpanAttributes = {};
    requestParameters('chat', 'not an object', none);
    requestParameters('chat', null, none);
    assert.deepEqual(none, {});
  });

  it('reports usage with cache and reasoning tokens only when there are some', () => {
    const plain: SpanAttributes = {};
    usageAttributes({ promptTokens: 12, completionTokens: 5, cachedTokens: 0, reasoningTokens: 0 }, plain);
    assert.deepEqual(plain, { 'gen_ai.usage.input_tokens': 12, 'gen_ai.usage.output_tokens': 5 });
    const full: SpanAttributes = {};
    usageAttributes({ promptTokens: 100, completionTokens: 50, cachedTokens: 60, cacheWriteTokens: 10, reasoningTokens: 30 }, full);
    assert.deepEqual(full, {
      'gen_ai.usage.input_tokens': 100,
      'gen_ai.usage.output_tokens': 50,
      'gen_ai.usage.cache_read.input_tokens': 60,
      'gen_ai.usage.cache_creation.input_tokens': 10,
      'gen_ai.usage.reasoning.output_tokens': 30,
    });
  });

  it('sets error.type from the error code, else from a server error status', () => {
    assert.equal(requestErrorType(401, 'invalid_api_key'), 'invalid_api_key');
    assert.equal(requestErrorType(502, undefined), '502');
    assert.equal(requestErrorType(404, undefined), undefined);
    assert.equal(requestErrorType(200, undefined), undefined);
  });
});

describe('tracing off', () => {
  it('is a constant no-op: no trace is linked to any signal', async () => {
    assert.equal(TRACING_OFF.enabled, false);
    assert.equal(traceOf(new AbortController().signal), undefined);
    await TRACING_OFF.shutdown();
  });
});
