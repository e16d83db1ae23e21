import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cacheDirectives, decideCaching, uncacheableBody, type CacheSettings } from '../../../src/cache/cache-policy.js';

const OFF: CacheSettings = { defaultTtlMs: 0, maxRequestTtlMs: 3_600_000 };
const ON: CacheSettings = { defaultTtlMs: 600_000, maxRequestTtlMs: 3_600_000 };

describe('cacheDirectives', () => {
  it('is undefined when neither header was sent', () => {
    assert.equal(cacheDirectives(undefined, undefined), undefined);
  });

  it('reads no-store, no-cache and max-age in any case and order', () => {
    assert.deepEqual(cacheDirectives('No-Cache, max-age=60', undefined), { noStore: false, noCache: true, maxAgeMs: 60_000 });
    assert.deepEqual(cacheDirectives('no-store', undefined), { noStore: true, noCache: false, maxAgeMs: undefined });
    assert.deepEqual(cacheDirectives(['private', 'max-age="30"'], undefined), { noStore: false, noCache: false, maxAgeMs: 30_000 });
  });

  it('does not take max-stale or s-maxage for max-age', () => {
    assert.equal(cacheDirectives('max-stale=60', undefined)?.maxAgeMs, undefined);
    assert.equal(cacheDirectives('s-maxage=60', undefined)?.maxAgeMs, undefined);
  });

  it('takes x-openai-api-cache-ttl over max-age, and ignores it when not a number', () => {
    assert.equal(cacheDirectives('max-age=60', '120')?.maxAgeMs, 120_000);
    assert.equal(cacheDirectives(undefined, 'soon')?.maxAgeMs, undefined);
  });
});

describe('decideCaching', () => {
  it('leaves a request alone when caching is off and the request does not ask', () => {
    assert.equal(decideCaching(OFF, undefined, undefined), undefined);
    assert.equal(decideCaching(OFF, undefined, cacheDirectives('no-cache', undefined)), undefined);
  });

  it("uses the owner's TTL, or the key's, which wins", () => {
    assert.deepEqual(decideCaching(ON, undefined, undefined), { read: true, write: true, ttlMs: 600_000, maxAgeMs: undefined });
    assert.equal(decideCaching(ON, 30, undefined)?.ttlMs, 30_000);
    assert.equal(decideCaching(OFF, 30, undefined)?.ttlMs, 30_000);
  });

  it('never caches for a key whose cache_ttl is 0, whatever the request asks', () => {
    assert.equal(decideCaching(ON, 0, undefined), undefined);
    assert.equal(decideCaching(ON, 0, cacheDirectives('max-age=60', undefined)), undefined);
  });

  it('lets a request opt in with max-age, capped at cache_max_ttl, and only when the owner allows it', () => {
    assert.deepEqual(decideCaching(OFF, undefined, cacheDirectives('max-age=60', undefined)), { read: true, write: true, ttlMs: 60_000, maxAgeMs: 60_000 });
    assert.equal(decideCaching(OFF, undefined, cacheDirectives('max-age=99999', undefined))?.ttlMs, 3_600_000);
    assert.equal(decideCaching({ defaultTtlMs: 0, maxRequestTtlMs: 0 }, undefined, cacheDirectives('max-age=60', undefined)), undefined);
  });

  it('no-store neither reads nor writes; no-cache and max-age=0 write without reading', () => {
    assert.deepEqual(decideCaching(ON, undefined, cacheDirectives('no-store', undefined)), { read: false, write: false, ttlMs: 600_000, maxAgeMs: undefined });
    assert.deepEqual(decideCaching(ON, undefined, cacheDirectives('no-cache', undefined)), { read: false, write: true, ttlMs: 600_000, maxAgeMs: undefined });
    assert.deepEqual(decideCaching(ON, undefined, cacheDirectives('max-age=0', undefined)), { read: false, write: true, ttlMs: 600_000, maxAgeMs: 0 });
  });

  it('a max-age on a caching key bounds the age of what is read, not the TTL of what is stored', () => {
    assert.deepEqual(decideCaching(ON, undefined, cacheDirectives('max-age=5', undefined)), { read: true, write: true, ttlMs: 600_000, maxAgeMs: 5_000 });
  });
});

describe('uncacheableBody', () => {
  it('refuses several samples, stored completions and audio answers', () => {
    assert.equal(uncacheableBody({ n: 2 }), 'n > 1');
    assert.equal(uncacheableBody({ store: true }), 'store');
    assert.equal(uncacheableBody({ modalities: ['text', 'audio'] }), 'audio output');
  });

  it('takes ordinary requests, tools and n=1 included', () => {
    assert.equal(uncacheableBody({ model: 'm', messages: [], n: 1, tools: [{ type: 'function' }], temperature: 0.7 }), undefined);
  });
});
