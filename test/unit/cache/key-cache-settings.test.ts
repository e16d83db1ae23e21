import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attributesToSettings } from '../../../src/auth/key-attributes.js';
import { attributesFromFlags, clearedFromFlags } from '../../../src/cli/key-flags.js';
import { loadConfig } from '../../../src/config/index.js';
import { tempConfigDir } from '../../helpers/temp-config.js';

const load = (env: Record<string, string>, file?: Record<string, unknown>) => loadConfig({ env: { ACCESS_TOKEN: 'cache-settings-test-token', ...env }, cwd: tempConfigDir(file) });

describe('response cache settings', () => {
  it('are off by default, with requests allowed up to an hour and a 64 MiB / 1 MiB store', () => {
    assert.deepEqual(load({}).cache, { ttlMs: 0, maxRequestTtlMs: 3_600_000, maxBytes: 64 * 1024 * 1024, maxEntryBytes: 1024 * 1024 });
  });

  it('come from config.json, the environment winning', () => {
    const config = load({ CACHE_TTL: '120', CACHE_MAX_BYTES: '8MiB' }, { cache_ttl: 60, cache_max_ttl: 0, cache_max_entry_bytes: '64KiB' });
    assert.deepEqual(config.cache, { ttlMs: 120_000, maxRequestTtlMs: 0, maxBytes: 8 * 1024 * 1024, maxEntryBytes: 64 * 1024 });
  });

  it('refuse a negative or fractional TTL with one line naming the key', () => {
    assert.throws(() => load({ CACHE_TTL: '-1' }), /CACHE_TTL/);
    assert.throws(() => load({}, { cache_max_ttl: 1.5 }), /cache_max_ttl/);
  });

  it("take a key's cache_ttl and cache_group from config.json, and refuse a group name that is not a name", () => {
    const config = load({}, { keys: [{ name: 'k', key: 'a-key-of-sixteen-chars', cache_ttl: 0, cache_group: 'team.a' }] });
    assert.deepEqual(attributesToSettings(config.keys[0]!), { cacheTtl: 0, cacheGroup: 'team.a' });
    assert.throws(() => load({}, { keys: [{ name: 'k', key: 'a-key-of-sixteen-chars', cache_group: 'no spaces' }] }), /cache_group/);
  });

  it('are set and cleared by the CLI flags --cache-ttl and --cache-group', () => {
    assert.deepEqual(attributesFromFlags(new Map([['cache-ttl', '300'], ['cache-group', 'bots']])), { cache_ttl: 300, cache_group: 'bots' });
    assert.throws(() => attributesFromFlags(new Map([['cache-ttl', 'soon']])), /--cache-ttl is "soon"/);
    assert.deepEqual([...clearedFromFlags(new Map([['clear', 'cache-ttl,cache-group']]))], ['cache-ttl', 'cache-group']);
  });
});
