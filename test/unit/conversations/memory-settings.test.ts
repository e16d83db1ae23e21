import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { memorySettings } from '../../../src/conversations/memory-settings.js';
import { tempConfigDir } from '../../helpers/temp-config.js';

const load = (env: Record<string, string>, file?: Record<string, unknown>) => loadConfig({ env: { ACCESS_TOKEN: 'memory-settings-test-token', ...env }, cwd: tempConfigDir(file) });

describe('memory settings', () => {
  it('default to on, 4000 tokens, 100 turns and 7 days', () => {
    assert.deepEqual(load({}).memory, { enabled: true, maxTokens: 4000, maxTurns: 100, ttlSeconds: 604_800 });
  });

  it('come from config.json, with the environment winning', () => {
    const config = load({ MEMORY_MAX_TOKENS: '1500', MEMORY: 'false' }, { memory: true, memory_max_tokens: 900, memory_max_turns: 12, memory_ttl: 3600 });
    assert.deepEqual(config.memory, { enabled: false, maxTokens: 1500, maxTurns: 12, ttlSeconds: 3600 });
  });

  it('refuse values out of range, naming the setting', () => {
    assert.throws(() => load({ MEMORY_TTL: '0' }), /MEMORY_TTL.*seconds a conversation is kept/);
    assert.throws(() => load({}, { memory_max_turns: 1001 }), /"memory_max_turns".*from 1 to 1000/);
    assert.throws(() => load({}, { keys: [{ name: 'k', key: 'a-key-of-sixteen-chars', memory_max_tokens: 0 }] }), /memory_max_tokens/);
  });

  it('a key’s own settings win where it sets them; unset ones follow the owner’s', () => {
    const owner = { enabled: true, maxTokens: 4000, maxTurns: 100, ttlSeconds: 604_800 };
    assert.equal(memorySettings(owner, undefined), owner);
    assert.deepEqual(memorySettings(owner, { enabled: false, maxTokens: undefined, maxTurns: 5, ttlSeconds: undefined }), { enabled: false, maxTokens: 4000, maxTurns: 5, ttlSeconds: 604_800 });
  });
});
