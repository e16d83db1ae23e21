/**
 * What may be cached, and for how long: the owner's settings, the key's, and the request's own
 * `Cache-Control` (RFC 9111 §5.2.1 request directives, read as a cache in front of an origin
 * would: `no-store`, `no-cache`, `max-age`) or `x-openai-api-cache-ttl`. Pure functions.
 */

/** The owner's settings (config `cache_ttl`, `cache_max_ttl`), in ms. */
export interface CacheSettings {
  /** TTL for every caller whose key does not set its own; 0 = off. */
  readonly defaultTtlMs: number;
  /** The longest TTL a request may ask for itself; 0 = requests cannot turn caching on. */
  readonly maxRequestTtlMs: number;
}

/** What one request asked of the cache. */
export interface CacheDirectives {
  /** `no-store`: neither read nor store. */
  readonly noStore: boolean;
  /** `no-cache`: do not answer from the cache, but store the fresh answer. */
  readonly noCache: boolean;
  /** `max-age=N` or `x-openai-api-cache-ttl: N`, in ms: opt in for N seconds, and accept no entry older. */
  readonly maxAgeMs: number | undefined;
}

/** What the cache does for one request. Neither `read` nor `write`: bypassed (counted, marked). */
export interface CacheDecision {
  readonly read: boolean;
  readonly write: boolean;
  /** How long a stored answer lives. */
  readonly ttlMs: number;
  /** Entries older than this are not served (the request's max-age). */
  readonly maxAgeMs: number | undefined;
}

export const CACHE_TTL_HEADER = 'x-openai-api-cache-ttl';
/** The header marking answers the cache took part in: `hit`, `miss`, `bypass`. */
export const CACHE_RESULT_HEADER = 'x-openai-api-cache';

const MAX_AGE = /(?:^|,)\s*max-age\s*=\s*"?(\d{1,10})"?\s*(?:,|$)/i;
const NO_STORE = /(?:^|,)\s*no-store\s*(?:,|$)/i;
const NO_CACHE = /(?:^|,)\s*no-cache\s*(?:,|$)/i;
const SECONDS = /^\s*(\d{1,10})\s*$/;

/** The request's directives, or undefined when it sent neither header (most requests: no parsing). */
export function cacheDirectives(cacheControl: string | string[] | undefined, ttlHeader: string | string[] | undefined): CacheDirectives | undefined {
  if (cacheControl === undefined && ttlHeader === undefined) return undefined;
  const control = Array.isArray(cacheControl) ? cacheControl.join(',') : (cacheControl ?? '');
  let seconds: number | undefined;
  const ttl = typeof ttlHeader === 'string' ? SECONDS.exec(ttlHeader) : null;
  if (ttl !== null) seconds = Number(ttl[1]);
  else {
    const maxAge = MAX_AGE.exec(control);
    if (maxAge !== null) seconds = Number(maxAge[1]);
  }
  return { noStore: NO_STORE.test(control), noCache: NO_CACHE.test(control), maxAgeMs: seconds === undefined ? undefined : seconds * 1000 };
}

/**
 * The decision for a caller whose key sets `keyTtlSeconds` (undefined: not set, the owner's
 * default applies; 0: caching off for the key, whatever its requests ask), given the request's
 * directives. Undefined when the cache has nothing to do with the request.
 */
export function decideCaching(settings: CacheSettings, keyTtlSeconds: number | undefined, directives: CacheDirectives | undefined): CacheDecision | undefined {
  if (keyTtlSeconds === 0) return undefined;
  const ownerTtlMs = keyTtlSeconds === undefined ? settings.defaultTtlMs : keyTtlSeconds * 1000;
  let ttlMs = ownerTtlMs;
  const maxAgeMs = directives?.maxAgeMs;
  if (ttlMs === 0) {
    // Off unless the request opts in, within what the owner allows requests.
    if (maxAgeMs === undefined || settings.maxRequestTtlMs === 0) return undefined;
    ttlMs = Math.min(maxAgeMs, settings.maxRequestTtlMs);
  }
  if (directives === undefined) return { read: true, write: true, ttlMs, maxAgeMs: undefined };
  if (directives.noStore || ttlMs === 0) return { read: false, write: false, ttlMs, maxAgeMs };
  // max-age=0 asks for a fresh answer (RFC 9111 §5.2.1.1): as no-cache.
  return { read: !directives.noCache && maxAgeMs !== 0, write: true, ttlMs, maxAgeMs };
}

/** The request body fields and values that make an answer unfit to replay, and why. */
export function uncacheableBody(body: Record<string, unknown>): string | undefined {
  // Several samples are asked for to get different ones; replaying the same samples defeats that.
  if (typeof body.n === 'number' && body.n > 1) return 'n > 1';
  // Stored completions are objects the upstream keeps (and the gateway records as the key's); a replay would create none.
  if (body.store === true) return 'store';
  // Audio answers carry an id and an expiry the upstream honours for a while only.
  if (Array.isArray(body.modalities) && body.modalities.includes('audio')) return 'audio output';
  return undefined;
}
