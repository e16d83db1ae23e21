import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UpstreamConfig } from '../../../../src/config/upstream-entry.js';
import { adapterFor } from '../../../../src/upstream/adapters/adapter.js';

function config(overrides: Partial<UpstreamConfig>): UpstreamConfig {
  return { name: 'u', type: 'openai', baseUrl: 'https://api.example.com/v1', apiKeys: ['sk-x'], weight: 1, models: ['*'], headers: {}, apiVersion: undefined, deployments: {}, proxy: undefined, includeUsage: true, websockets: true, anthropicVersion: undefined, ...overrides };
}

describe('WebSocket targets of the provider adapters', () => {
  it('OpenAI: the Responses and Realtime sockets under base_url, the query kept', () => {
    const adapter = adapterFor(config({}), '/v1');
    assert.equal(adapter.socketTarget('/responses', new URLSearchParams(), undefined), '/v1/responses');
    assert.equal(adapter.socketTarget('/realtime', new URLSearchParams('model=gpt-realtime'), 'gpt-realtime'), '/v1/realtime?model=gpt-realtime');
  });

  it('an upstream marked "websockets": false (most compatible providers) has none', () => {
    const adapter = adapterFor(config({ type: 'openai-compatible', websockets: false }), '/v1');
    assert.equal(adapter.socketTarget('/responses', new URLSearchParams(), undefined), undefined);
    assert.equal(adapter.socketTarget('/realtime', new URLSearchParams('model=x'), 'x'), undefined);
  });

  it("Azure: Realtime per deployment with its api-version, no Responses WebSocket, nothing for a model without a deployment", () => {
    const adapter = adapterFor(config({ type: 'azure', baseUrl: 'https://r.openai.azure.com', apiVersion: '2025-04-01-preview', deployments: { 'gpt-realtime': 'my-rt' } }), '');
    assert.equal(adapter.socketTarget('/realtime', new URLSearchParams('model=gpt-realtime'), 'gpt-realtime'), '/openai/realtime?api-version=2025-04-01-preview&deployment=my-rt');
    assert.equal(adapter.socketTarget('/realtime', new URLSearchParams('model=gpt-4o'), 'gpt-4o'), undefined);
    assert.equal(adapter.socketTarget('/responses', new URLSearchParams(), undefined), undefined);
  });
});
