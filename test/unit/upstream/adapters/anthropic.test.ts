import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UpstreamConfig } from '../../../../src/config/upstream-entry.js';
import { adapterFor } from '../../../../src/upstream/adapters/adapter.js';

function config(overrides: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return { name: 'claude', type: 'anthropic', baseUrl: 'https://api.anthropic.com/v1', apiKeys: ['sk-ant-x'], weight: 1, models: ['claude-*'], headers: {}, apiVersion: undefined, deployments: {}, proxy: undefined, includeUsage: false, websockets: false, anthropicVersion: '2023-06-01', ...overrides };
}

describe('Anthropic adapter', () => {
  it('appends the path below /v1 to base_url, query kept (Claude Code sends /messages?beta=true)', () => {
    const adapter = adapterFor(config(), '/v1');
    assert.equal(adapter.target('/messages?beta=true', 'claude-sonnet-4-5'), '/v1/messages?beta=true');
    assert.equal(adapter.target('/messages/count_tokens', 'claude-sonnet-4-5'), '/v1/messages/count_tokens');
  });

  it("sends the key as x-api-key with the entry's headers, never Authorization", () => {
    const adapter = adapterFor(config({ headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' } }), '/v1');
    assert.deepEqual(adapter.keyHeaders('sk-ant-x'), { 'anthropic-beta': 'prompt-caching-2024-07-31', 'x-api-key': 'sk-ant-x' });
    assert.deepEqual(adapter.keyHeaders(undefined), { 'anthropic-beta': 'prompt-caching-2024-07-31' });
  });

  it("sends the caller's anthropic-version when it sent one (its SDK reads the answer in that version), else the entry's", () => {
    const adapter = adapterFor(config({ anthropicVersion: '2024-01-01' }), '/v1');
    const key = adapter.keyHeaders('sk-ant-x');
    assert.deepEqual(adapter.requestHeaders({ 'content-type': 'application/json' }, key), { 'anthropic-version': '2024-01-01', 'content-type': 'application/json', 'x-api-key': 'sk-ant-x' });
    assert.deepEqual(adapter.requestHeaders({ 'anthropic-version': '2026-10-21', 'anthropic-beta': 'x', 'x-api-key': 'caller-key' }, key), { 'anthropic-version': '2026-10-21', 'anthropic-beta': 'x', 'x-api-key': 'sk-ant-x' }, 'the credential is always the key');
    assert.equal(adapterFor(config({ anthropicVersion: undefined }), '/v1').requestHeaders({}, {})['anthropic-version'], '2023-06-01');
  });

  it('serves only GET /models without a model, and has no WebSockets', () => {
    const adapter = adapterFor(config(), '/v1');
    assert.equal(adapter.servesWithoutModel('/models'), true);
    assert.equal(adapter.servesWithoutModel('/files'), false);
    assert.equal(adapter.servesModel('claude-opus-4-1'), true);
    assert.equal(adapter.socketTarget('/responses', new URLSearchParams(), undefined), undefined);
    assert.equal(adapter.socketTarget('/realtime', new URLSearchParams('model=x'), 'x'), undefined);
  });
});
