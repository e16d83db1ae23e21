import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maxOutputTokens, resolveAlias } from '../../../src/policy/model-rules.js';

describe('resolveAlias', () => {
  const aliases = Object.freeze({ gpt4: 'gpt-4o', 'claude-sonnet-*': 'claude-sonnet-4-5', 'claude-*': 'gpt-4o-mini', 'claude-haiku-4-5': 'claude-haiku-4-5-20251001' });

  it('takes an exact name first, then the first glob that matches in config order', () => {
    assert.equal(resolveAlias('gpt4', aliases), 'gpt-4o');
    assert.equal(resolveAlias('claude-haiku-4-5', aliases), 'claude-haiku-4-5-20251001');
    assert.equal(resolveAlias('claude-sonnet-4-5-20250929', aliases), 'claude-sonnet-4-5');
    assert.equal(resolveAlias('claude-opus-4-1', aliases), 'gpt-4o-mini');
  });

  it('passes unknown names unchanged and never treats other characters as patterns', () => {
    assert.equal(resolveAlias('gpt-4o', aliases), 'gpt-4o');
    assert.equal(resolveAlias('claude', aliases), 'claude');
    assert.equal(resolveAlias('x.y', { 'x?y': 'z', 'x.*': 'w' }), 'w');
    assert.equal(resolveAlias('xay', { 'x.y': 'z' }), 'xay');
  });
});

describe('maxOutputTokens', () => {
  it('knows the OpenAI families and no other names', () => {
    assert.equal(maxOutputTokens('gpt-4o'), 16_384);
    assert.equal(maxOutputTokens('gpt-4o-mini-2024-07-18'), 16_384);
    assert.equal(maxOutputTokens('gpt-4.1-mini'), 32_768);
    assert.equal(maxOutputTokens('gpt-5'), 128_000);
    assert.equal(maxOutputTokens('o4-mini'), 100_000);
    for (const model of ['gpt-4', 'gpt-4o2', 'claude-sonnet-4-5', 'llama-3', 'gpt-4.10']) assert.equal(maxOutputTokens(model), undefined, model);
  });
});
