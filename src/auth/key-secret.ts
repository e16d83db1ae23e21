import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SECRET_PREFIX = 'oa-';
const SECRET_BYTES = 32;
/** ceil(256 / log2(62)) = 43: every 32-byte value fits, so the text length never varies. */
const SECRET_DIGITS = 43;
const ID_BYTES = 12;
const ID_DIGITS = 17;
/** `oa-` plus eight characters: enough to tell keys apart in lists, far too little to guess the rest. */
const VISIBLE_PREFIX_LENGTH = 11;

/**
 * A new caller key: `oa-` + 43 base62 characters carrying 256 random bits. The bytes are
 * converted as one big integer (a change of base, not per-byte `% 62`), so every digit string
 * is exactly as likely as its number — no modulo bias. Show it once; store only its hash.
 */
export function generateKeySecret(): string {
  return SECRET_PREFIX + base62(randomBytes(SECRET_BYTES), SECRET_DIGITS);
}

/** SHA-256 hex. The secret has 256 bits of entropy, so an unsalted fast hash is sufficient. */
export function hashKeySecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** The visible part stored beside the hash, e.g. `oa-AbCd1234`. */
export function keyPrefix(secret: string): string {
  return secret.slice(0, VISIBLE_PREFIX_LENGTH);
}

/** A database id for a key, e.g. `key_4fZ0c...`; random, so ids reveal neither order nor count. */
export function newKeyId(): string {
  return 'key_' + base62(randomBytes(ID_BYTES), ID_DIGITS);
}

/** Big-endian bytes → base62, left-padded with '0' to `digits` characters. */
function base62(bytes: Buffer, digits: number): string {
  let value = BigInt('0x' + bytes.toString('hex'));
  let text = '';
  while (value > 0n) {
    text = ALPHABET[Number(value % 62n)] + text;
    value /= 62n;
  }
  return text.padStart(digits, '0');
}
