import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { generateKeySecret, hashKeySecret, keyPrefix } from '../../../src/auth/key-secret.js';
import { newKeyId } from '../../../src/storage/keys-repository.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

describe('key secrets', () => {
  test('a secret is oa- plus 43 base62 characters and never repeats', () => {
    const secrets = new Set(Array.from({ length: 2000 }, generateKeySecret));
    assert.equal(secrets.size, 2000);
    for (const secret of secrets) assert.match(secret, /^oa-[0-9A-Za-z]{43}$/);
  });

  test('base62 digits are uniformly distributed (no modulo bias)', () => {
    // Position 0 is the top digit of a 256-bit number and cannot reach every symbol; skip it.
    const counts = new Map<string, number>([...BASE62].map((c) => [c, 0]));
    let total = 0;
    for (let i = 0; i < 3000; i += 1) {
      for (const c of generateKeySecret().slice(4)) {
        counts.set(c, (counts.get(c) ?? 0) + 1);
        total += 1;
      }
    }
    const expected = total / 62;
    const chiSquare = [...counts.values()].reduce((sum, n) => sum + (n - expected) ** 2 / expected, 0);
    // 61 degrees of freedom: 120 is beyond p = 0.00001; per-byte `% 62` bias would score ~800 here.
    assert.ok(chiSquare < 120, `chi-square ${chiSquare.toFixed(1)}`);
  });

  test('the hash is SHA-256 hex and the prefix is the first 11 characters', () => {
    assert.equal(hashKeySecret('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const secret = generateKeySecret();
    assert.match(hashKeySecret(secret), /^[0-9a-f]{64}$/);
    assert.equal(keyPrefix(secret), secret.slice(0, 11));
    assert.match(keyPrefix(secret), /^oa-[0-9A-Za-z]{8}$/);
  });

  test('key ids are key_ plus 17 base62 characters and never repeat', () => {
    const ids = new Set(Array.from({ length: 2000 }, newKeyId));
    assert.equal(ids.size, 2000);
    for (const id of ids) assert.match(id, /^key_[0-9A-Za-z]{17}$/);
  });
});
