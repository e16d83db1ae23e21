import type { Usage } from '../streaming/usage.js';

/**
 * One stored answer: what the client was sent for a request that succeeded (status 200), its
 * body bytes exactly — a JSON body, or an event stream through its last event — and the usage
 * the upstream reported for it, which a hit is metered with (at no cost). Never the request.
 */
export interface CachedAnswer {
  readonly contentType: string;
  readonly body: Buffer;
  readonly usage: Usage | undefined;
  /** ms since epoch: a request's `max-age` refuses older entries. */
  readonly storedAt: number;
}

/** The bytes an entry costs in the in-process store: its body plus a fixed allowance for the rest. */
export const ENTRY_OVERHEAD_BYTES = 256;

export function entryBytes(answer: CachedAnswer): number {
  return answer.body.length + answer.contentType.length + ENTRY_OVERHEAD_BYTES;
}

interface Meta {
  t: string;
  u: Usage | null;
  s: number;
}

/**
 * The Redis value: a 4-byte big-endian length, that many bytes of JSON metadata (content type,
 * usage, time), then the body bytes as they are — no base64, no copy of the body into JSON.
 */
export function encodeAnswer(answer: CachedAnswer): Buffer {
  const meta: Meta = { t: answer.contentType, u: answer.usage ?? null, s: answer.storedAt };
  const head = Buffer.from(JSON.stringify(meta));
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(head.length, 0);
  return Buffer.concat([length, head, answer.body]);
}

/** The answer `encodeAnswer` wrote, or undefined for anything else (a value of another version, a truncated one). */
export function decodeAnswer(value: Buffer): CachedAnswer | undefined {
  if (value.length < 4) return undefined;
  const headLength = value.readUInt32BE(0);
  if (4 + headLength > value.length) return undefined;
  let meta: Meta;
  try {
    meta = JSON.parse(value.subarray(4, 4 + headLength).toString('utf8')) as Meta;
  } catch {
    return undefined;
  }
  if (meta === null || typeof meta !== 'object' || typeof meta.t !== 'string' || typeof meta.s !== 'number') return undefined;
  const usage = meta.u !== null && typeof meta.u === 'object' && typeof meta.u.promptTokens === 'number' ? meta.u : undefined;
  return { contentType: meta.t, body: value.subarray(4 + headLength), usage, storedAt: meta.s };
}
