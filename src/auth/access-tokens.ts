import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/**
 * The seed's shared access tokens. Comparison is on SHA-256 digests with timingSafeEqual and
 * visits every token, so neither the length nor the matching prefix of a token leaks through timing.
 */
export class AccessTokens {
  private readonly digests: readonly Buffer[];

  constructor(tokens: readonly string[]) {
    this.digests = tokens.map(digest);
  }

  get size(): number {
    return this.digests.length;
  }

  /** Index of the matching token, or -1. */
  match(presented: string): number {
    const candidate = digest(presented);
    let found = -1;
    for (let i = 0; i < this.digests.length; i++) {
      if (timingSafeEqual(candidate, this.digests[i]!) && found === -1) found = i;
    }
    return found;
  }
}
