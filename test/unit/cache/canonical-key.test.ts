import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { cacheKey, stableJson, type CacheKeyParts } from '../../../src/cache/canonical-key.js';

/** The same value with its object keys in another order, at every level. */
function shuffled(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((item, index) => shuffled(item, seed + index));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  const rotated = entries.length === 0 ? entries : [...entries.slice(seed % entries.length), ...entries.slice(0, seed % entries.length)].reverse();
  const out: Record<string, unknown> = {};
  // defineProperty, not assignment: a "__proto__" key must stay an own key, as JSON.parse makes it.
  for (const [name, member] of rotated) Object.defineProperty(out, name, { value: shuffled(member, seed + 1), enumerable: true, writable: true, configurable: true });
  return out;
}

const base: CacheKeyParts = { partition: 'key:key_a', route: 'POST /v1/chat/completions', stream: false, variant: '', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] } };

describe('stableJson', () => {
  it('reads back as the same value (JSON values round-trip)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        assert.deepEqual(JSON.parse(stableJson(value)), JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('does not depend on the order of object keys, at any depth', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(50), (value, seed) => {
        assert.equal(stableJson(shuffled(value, seed)), stableJson(value));
      }),
    );
  });

  it('keeps array order: messages in another order are another request', () => {
    assert.notEqual(stableJson([1, 2]), stableJson([2, 1]));
  });

  it('does not confuse a key holding an escaped quote with two keys', () => {
    assert.notEqual(stableJson({ 'a":"b': 1 }), stableJson({ a: 'b', '': 1 }));
  });
});

describe('cacheKey', () => {
  it('is a SHA-256 hex digest', () => {
    assert.match(cacheKey(base), /^[0-9a-f]{64}$/);
  });

  it('is the same for the same request whatever the key order of its body', () => {
    const reordered = { ...base, body: { messages: [{ content: 'Hi', role: 'user' }], model: 'gpt-4o-mini' } };
    assert.equal(cacheKey(reordered), cacheKey(base));
  });

  it('differs when any part differs: partition, route, streaming, variant, body', () => {
    const keys = new Set([
      cacheKey(base),
      cacheKey({ ...base, partition: 'key:key_b' }),
      cacheKey({ ...base, partition: 'group:team' }),
      cacheKey({ ...base, route: 'POST /v1/completions' }),
      cacheKey({ ...base, stream: true }),
      cacheKey({ ...base, variant: 'usage-dropped' }),
      cacheKey({ ...base, body: { ...(base.body as object), temperature: 0 } }),
    ]);
    assert.equal(keys.size, 7);
  });

  it('never collides two different bodies (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        fc.pre(stableJson(a) !== stableJson(b));
        assert.notEqual(cacheKey({ ...base, body: a }), cacheKey({ ...base, body: b }));
      }),
    );
  });
});
