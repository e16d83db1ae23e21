import { createHash } from 'node:crypto';
import { randomBase62 } from '../domain/base62.js';

const SECRET_PREFIX = 'oa-';
const SECRET_BYTES = 32;
/** ceil(256 / log2(62)) = 43: every 32-byte value fits, so the text length never varies. */
const SECRET_DIGITS = 43;
/** `oa-` plus eight characters: enough to tell keys apart in lists, far too little to guess the rest. */
const VISIBLE_PREFIX_LENGTH = 11;

/**
 * A new caller key: `oa-` + 43 base62 characters carrying 256 random bits, without modulo bias.
 * Show it once; store only its hash.
 */
export function generateKeySecret(): string {
  return SECRET_PREFIX + randomBase62(SECRET_BYTES, SECRET_DIGITS);
}

/** SHA-256 hex. The secret has 256 bits of entropy, so an unsalted fast hash is sufficient. */
export function hashKeySecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** The visible part stored beside the hash, e.g. `oa-AbCd1234`. */
export function keyPrefix(secret: string): string {
  return secret.slice(0, VISIBLE_PREFIX_LENGTH);
}
