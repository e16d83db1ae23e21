import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeAnswer, encodeAnswer, type CachedAnswer } from '../../../src/cache/cached-answer.js';

describe('cached answer encoding (the Redis value)', () => {
  it('decodes what it encodes, body bytes exactly', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.string(), fc.option(fc.nat()), fc.nat(), (body, contentType, prompt, storedAt) => {
        const usage = prompt === null ? undefined : { promptTokens: prompt, completionTokens: 3, totalTokens: prompt + 3, cachedTokens: 0, reasoningTokens: 0 };
        const answer: CachedAnswer = { contentType, body: Buffer.from(body), usage, storedAt };
        const decoded = decodeAnswer(encodeAnswer(answer));
        assert.ok(decoded);
        assert.deepEqual(Buffer.compare(decoded.body, answer.body), 0);
        assert.equal(decoded.contentType, contentType);
        assert.deepEqual(decoded.usage, usage);
        assert.equal(decoded.storedAt, storedAt);
      }),
    );
  });

  it('reads anything else as nothing, never throwing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const decoded = decodeAnswer(Buffer.from(bytes));
        if (decoded !== undefined) assert.equal(typeof decoded.contentType, 'string');
      }),
    );
    assert.equal(decodeAnswer(Buffer.from([0, 0, 0, 200, 1, 2])), undefined, 'a truncated value');
  });
});
