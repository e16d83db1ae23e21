import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * `bytes` random bytes as `digits` base62 characters. The bytes are converted as one big integer
 * (a change of base, not per-byte `% 62`), so every digit string is exactly as likely as its
 * number — no modulo bias. `digits` must hold every value: ceil(8 × bytes / log2(62)).
 */
export function randomBase62(bytes: number, digits: number): string {
  let value = BigInt('0x' + randomBytes(bytes).toString('hex'));
  let text = '';
  while (value > 0n) {
    text = ALPHABET[Number(value % 62n)] + text;
    value /= 62n;
  }
  return text.padStart(digits, '0');
}
