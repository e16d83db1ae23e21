import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { KeyVerdict } from '../upstream/key-verdict.js';

/**
 * The messages instances exchange over the shared Redis, and the marks they leave in it. All of
 * them are hints that name things, never secrets: an app key by its database id, an upstream key
 * by its upstream's name and fingerprint. Whatever arrives is untrusted (anyone who can reach the
 * Redis can publish), so it is parsed strictly here and dropped when it does not fit.
 */

/** App keys changed: `{"v":1,"from":…,"scope":"key","id":"key_…"}`, or `"scope":"all"` (config reload). */
export const KEYS_CHANNEL = 'keys';
/** An upstream key set aside or resting: `{"v":1,"from":…,"upstream":…,"key":<16 hex>,"state":"disabled","status":401}` or `"state":"cooling","ms":…`. */
export const UPSTREAM_KEYS_CHANNEL = 'upstream-keys';

/** Every message we send is far shorter; a longer one is not ours and is not parsed. */
const MAX_MESSAGE_CHARS = 1024;
/** The longest rest a 429 can impose (HealthMonitor's cap), so a forged one cannot bench a key for days. */
export const MAX_COOLING_MS = 60 * 60 * 1000;

/** Names this process on the channels, so it can skip its own messages. Not a secret. */
export function newInstanceId(): string {
  return randomBytes(8).toString('hex');
}

const instanceId = z.string().regex(/^[0-9a-z-]{1,40}$/);
const keyId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const fingerprint = z.string().regex(/^[0-9a-f]{16}$/);
const upstreamName = z.string().min(1).max(200);

const keyChangeSchema = z.discriminatedUnion('scope', [
  z.object({ v: z.literal(1), from: instanceId, scope: z.literal('key'), id: keyId }).strict(),
  z.object({ v: z.literal(1), from: instanceId, scope: z.literal('all') }).strict(),
]);

const disabled = { state: z.literal('disabled'), status: z.union([z.literal(401), z.literal(402), z.literal(403), z.literal(429)]) };
const cooling = { state: z.literal('cooling'), ms: z.number().int().min(1).max(MAX_COOLING_MS) };
const verdictSchema = z.discriminatedUnion('state', [
  z.object({ v: z.literal(1), from: instanceId, upstream: upstreamName, key: fingerprint, ...disabled }).strict(),
  z.object({ v: z.literal(1), from: instanceId, upstream: upstreamName, key: fingerprint, ...cooling }).strict(),
]);
const markSchema = z.discriminatedUnion('state', [z.object({ v: z.literal(1), ...disabled }).strict(), z.object({ v: z.literal(1), state: z.literal('cooling') }).strict()]);

/** One key (`id`) or every key (`id` undefined) changed, announced by instance `from`. */
export interface KeyChange {
  readonly from: string;
  readonly id: string | undefined;
}

export function encodeKeyChange(change: KeyChange): string {
  return JSON.stringify(change.id === undefined ? { v: 1, from: change.from, scope: 'all' } : { v: 1, from: change.from, scope: 'key', id: change.id });
}

export function decodeKeyChange(message: string): KeyChange | undefined {
  const parsed = parse(message, keyChangeSchema);
  if (parsed === undefined) return undefined;
  return { from: parsed.from, id: parsed.scope === 'key' ? parsed.id : undefined };
}

export function encodeVerdict(from: string, verdict: KeyVerdict): string {
  const { upstream, key } = verdict;
  return JSON.stringify(verdict.state === 'disabled' ? { v: 1, from, upstream, key, state: 'disabled', status: verdict.status } : { v: 1, from, upstream, key, state: 'cooling', ms: verdict.ms });
}

export function decodeVerdict(message: string): { from: string; verdict: KeyVerdict } | undefined {
  const parsed = parse(message, verdictSchema);
  if (parsed === undefined) return undefined;
  const { from, upstream, key } = parsed;
  return { from, verdict: parsed.state === 'disabled' ? { upstream, key, state: 'disabled', status: parsed.status } : { upstream, key, state: 'cooling', ms: parsed.ms } };
}

/** The id of an upstream key's mark in Redis (UpstreamKeyMarks). */
export function markId(upstream: string, key: string): string {
  return `${key}:${upstream}`;
}

/** A verdict as a stored mark: the remaining time is the mark's TTL, so clocks need not agree. */
export function encodeMark(verdict: KeyVerdict): string {
  return JSON.stringify(verdict.state === 'disabled' ? { v: 1, state: 'disabled', status: verdict.status } : { v: 1, state: 'cooling' });
}

export function decodeMark(upstream: string, key: string, value: string, ttlMs: number): KeyVerdict | undefined {
  const parsed = parse(value, markSchema);
  if (parsed === undefined) return undefined;
  if (parsed.state === 'disabled') return { upstream, key, state: 'disabled', status: parsed.status };
  return { upstream, key, state: 'cooling', ms: Math.min(ttlMs, MAX_COOLING_MS) };
}

function parse<T>(message: string, schema: z.ZodType<T>): T | undefined {
  if (message.length > MAX_MESSAGE_CHARS) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(message);
  } catch {
    return undefined;
  }
  const result = schema.safeParse(json);
  return result.success ? result.data : undefined;
}
