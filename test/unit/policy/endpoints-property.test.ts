import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalPath } from '../../../src/http/canonical-path.js';
import { classify, knownEndpoints } from '../../../src/policy/endpoints.js';

// Every known endpoint, written as a caller could spell it: its ids filled in, any character
// percent-encoded in either case, slashes doubled, a trailing slash. Whatever the spelling, the
// canonical path must classify as that endpoint — an attacker's spelling never turns a metered or
// owned endpoint into "unknown" — and the path forwarded (the canonical one) is the plain path.

const endpoints = knownEndpoints();
const idChars = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~'.split(''));
const id = fc.array(idChars, { minLength: 1, maxLength: 12 }).map((chars) => `x${chars.join('')}`);

interface Spelling {
  method: string;
  name: string;
  plain: string;
  written: string;
}

const encodeChar = (char: string, upper: boolean): string => {
  const hex = char.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${upper ? hex.toUpperCase() : hex}`;
};

const spelling: fc.Arbitrary<Spelling> = fc
  .record({
    index: fc.nat({ max: endpoints.length - 1 }),
    ids: fc.array(id, { minLength: 4, maxLength: 4 }),
    encode: fc.array(fc.constantFrom<'keep' | 'lower' | 'upper'>('keep', 'keep', 'lower', 'upper'), { minLength: 200, maxLength: 200 }),
    doubles: fc.array(fc.nat({ max: 3 }), { minLength: 12, maxLength: 12 }),
    trailing: fc.boolean(),
  })
  .map(({ index, ids, encode, doubles, trailing }) => {
    const endpoint = endpoints[index]!;
    const [method, pattern] = endpoint.name.split(' ') as [string, string];
    let next = 0;
    const plain = pattern.replace(/\{(id)?\}/g, () => ids[next++ % ids.length]!);
    let written = '';
    let slash = 0;
    for (const [at, char] of [...plain].entries()) {
      if (char === '/') {
        written += '/'.repeat(1 + (doubles[slash++ % doubles.length] ?? 0));
        continue;
      }
      const how = encode[at % encode.length];
      written += how === 'keep' ? char : encodeChar(char, how === 'upper');
    }
    if (trailing) written += '/';
    return { method, name: endpoint.name, plain, written };
  });

describe('endpoint classification of any spelling', () => {
  it('classifies every spelling of a known endpoint as that endpoint, on the plain path', () => {
    fc.assert(
      fc.property(spelling, ({ method, name, plain, written }) => {
        const canonical = canonicalPath(`${written}?limit=2`);
        assert.equal(canonical.path, plain);
        assert.equal(canonical.query, '?limit=2');
        const found = classify(method, canonical.path.slice('/v1'.length));
        assert.ok(found.known, `${written} is known`);
        assert.equal(found.endpoint.name, name);
      }),
      { numRuns: 2000 },
    );
  });

  it('finds the object id of a path as the caller wrote it, decoded', () => {
    const found = classify('GET', canonicalPath('/v1/files/%66ile-abc/content').path.slice(3));
    assert.ok(found.known);
    assert.equal(found.id, 'file-abc');
    assert.equal(found.endpoint.object?.kind, 'file');
  });

  it('keeps upstream layouts (Azure deployments) apart from unknown endpoints', () => {
    const found = classify('POST', canonicalPath('/v1/%64eployments/x/chat/completions').path.slice(3));
    assert.ok(!found.known && found.upstreamSpecific);
    const unknown = classify('POST', '/evals');
    assert.ok(!unknown.known && !unknown.upstreamSpecific);
  });
});
