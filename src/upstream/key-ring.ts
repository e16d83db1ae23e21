/** The upstream keys of one provider, handed out in turn (the seed picked at random; turns spread load evenly). */
export class KeyRing {
  private cursor = 0;

  constructor(private readonly keys: readonly string[]) {}

  get size(): number {
    return this.keys.length;
  }

  next(): string | undefined {
    if (this.keys.length === 0) return undefined;
    const key = this.keys[this.cursor % this.keys.length];
    this.cursor = (this.cursor + 1) % this.keys.length;
    return key;
  }

  /** Every key, for redaction of upstream messages. */
  all(): readonly string[] {
    return this.keys;
  }
}
