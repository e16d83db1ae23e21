import { createHash } from 'node:crypto';

/**
 * JSON with object keys in code-point order at every level, so two bodies that differ only in
 * key order or whitespace read the same. Arrays keep their order (message order is meaning).
 * `undefined` members are left out as JSON.stringify leaves them out; a value JSON cannot hold
 * (a function, a symbol) never reaches here: the bodies were parsed from JSON or built from it.
 */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : stableJson(item))).join(',')}]`;
  const record = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const name of Object.keys(record).sort()) {
    const member = record[name];
    if (member === undefined) continue;
    parts.push(`${JSON.stringify(name)}:${stableJson(member)}`);
  }
  return `{${parts.join(',')}}`;
}

/** What one cached answer is the answer to. */
export interface CacheKeyParts {
  /** Whose entries these are: `key:<id>`, `group:<name>` (keys their owner grouped), `token:<name>`. */
  readonly partition: string;
  /** The route and its answer format: `POST /v1/chat/completions`, `POST /api/chat`; the query too, if any. */
  readonly route: string;
  /** Streamed answers and whole ones are different entries (their bytes differ). */
  readonly stream: boolean;
  /** What else changes the bytes the client gets for the same upstream body (the gateway dropping a usage event it added). */
  readonly variant: string;
  /** The body exactly as it goes upstream: the key's defaults, persona, ceiling and the model alias applied. */
  readonly body: unknown;
}

/** Bumped when what a key covers changes, so entries of an older gateway in a shared Redis are never read. */
const KEY_VERSION = 'v1';

/**
 * The cache key: SHA-256 (hex) of the stable JSON of everything that decides the answer's bytes.
 * The body itself is never stored, only this hash of it.
 */
export function cacheKey(parts: CacheKeyParts): string {
  const material = stableJson([KEY_VERSION, parts.partition, parts.route, parts.stream, parts.variant, parts.body]);
  return createHash('sha256').update(material).digest('hex');
}
