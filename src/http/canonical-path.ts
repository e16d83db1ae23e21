import { GatewayError } from '../errors/index.js';

// One spelling per request path, so that what the gateway classifies (endpoint kind, model
// checks, metering, ownership) is exactly what it forwards. Without it `/v1//chat/completions`
// or `/v1/chat/%63ompletions` looks like an unknown endpoint here while the upstream serves a
// chat completion, and a path decoded for routing but forwarded raw reaches another resource.
//
// Normalisation follows RFC 3986 §6.2.2 (case and percent-encoding normalisation) but refuses
// where a browser or server would resolve: dot segments (§5.2.4) and encoded `/` or `\` are
// interpreted differently by different servers, so no spelling of them is safe to pass on.
// https://www.rfc-editor.org/rfc/rfc3986#section-6.2.2

/** A request target in canonical form. */
export interface CanonicalTarget {
  /** The normalised path, starting with `/` (the `/v1` prefix included). */
  path: string;
  /** The query as sent: `''` or `?…`. */
  query: string;
}

const HEX = '0123456789ABCDEF';

/**
 * The path and query of a request target. Node accepts the absolute form (`POST http://host/v1/…`,
 * RFC 9112 §3.2.2), which still names a resource here: the scheme and host are dropped, never followed.
 */
function originForm(target: string): string {
  if (target.startsWith('/')) return target;
  const rest = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '');
  return rest.startsWith('/') ? rest : `/${rest}`;
}

const refuse = (what: string): GatewayError => new GatewayError('invalid_request', `The request path ${what}.`);

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~" mean the same encoded or not.
function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x7e
  );
}

const isControl = (code: number): boolean => code < 0x20 || code === 0x7f;

/** Decodes unreserved characters and upper-cases every other escape, refusing what cannot be forwarded safely. */
function normaliseEscapes(raw: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < raw.length; i++) {
    const code = raw.charCodeAt(i);
    if (code === 0x5c) throw refuse('may not contain "\\"');
    if (isControl(code)) throw refuse('may not contain control characters');
    if (code !== 0x25) continue;
    const high = hexValue(raw.charCodeAt(i + 1));
    const low = hexValue(raw.charCodeAt(i + 2));
    // Echo at most the three characters of the escape: the rest of the path is the caller's.
    if (high === -1 || low === -1) throw refuse(`has an invalid percent-escape ${JSON.stringify(raw.slice(i, i + 3))}`);
    const value = high * 16 + low;
    if (value === 0x2f) throw refuse('may not contain an encoded "/" (%2F)');
    if (value === 0x5c) throw refuse('may not contain an encoded "\\" (%5C)');
    if (isControl(value)) throw refuse('may not contain encoded control characters');
    out += raw.slice(from, i) + (isUnreserved(value) ? String.fromCharCode(value) : `%${HEX[high]}${HEX[low]}`);
    i += 2;
    from = i + 1;
  }
  return out + raw.slice(from);
}

/** The non-empty segments of a path: `/v1//files/` → `['v1', 'files']`. */
export function splitSegments(path: string): string[] {
  return path.split('/').filter((segment) => segment !== '');
}

/**
 * The canonical path and raw query of a request target (`request.url`). Throws
 * `GatewayError('invalid_request')` for a path that has no safe canonical form.
 */
export function canonicalPath(target: string): CanonicalTarget {
  let url = originForm(target);
  // Clients never send a fragment (RFC 9112 §3.2); one that arrives is not the upstream's business.
  const hashAt = url.indexOf('#');
  if (hashAt !== -1) url = url.slice(0, hashAt);
  const queryAt = url.indexOf('?');
  const rawPath = queryAt === -1 ? url : url.slice(0, queryAt);
  const query = queryAt === -1 ? '' : url.slice(queryAt);

  // Collapsing empty segments also drops a trailing slash: `/v1/files/` is `/v1/files`.
  const segments = splitSegments(normaliseEscapes(rawPath));
  for (const segment of segments) {
    if (segment === '.' || segment === '..') throw refuse('may not contain "." or ".." segments');
  }
  return { path: `/${segments.join('/')}`, query };
}
