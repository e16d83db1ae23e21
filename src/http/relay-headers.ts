import type { IncomingHttpHeaders } from 'node:http';

/**
 * Caller headers that mean something to the upstream. Everything else — the caller's
 * Authorization, cookies, hop-by-hop headers, Host, Accept-Encoding (we want identity bodies to
 * read usage) — stays behind.
 */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'accept', 'openai-beta', 'idempotency-key', 'x-stainless-helper-method'] as const;

/**
 * The request headers sent upstream; the upstream's own headers (key, organization, project) are
 * added by the pool. `contentType` replaces the caller's when the gateway read the body as
 * something else than it was labelled (JSON sent as text/plain goes on as JSON).
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, contentLength: number | undefined, contentType?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  if (contentType !== undefined) out['content-type'] = contentType;
  if (contentLength !== undefined) out['content-length'] = String(contentLength);
  return out;
}

// RFC 9110 §7.6.1 connection-specific headers, plus ones Node sets for the client connection itself.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
// Upstream headers that describe the upstream's own infrastructure or identity, not the answer.
const DROPPED_RESPONSE_HEADERS = new Set(['set-cookie', 'server', 'date', 'alt-svc', 'cf-ray', 'cf-cache-status', 'strict-transport-security', 'x-request-id', 'openai-organization', 'openai-project', 'access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers', 'vary']);

/**
 * The upstream's response headers as the client should see them: the answer's own headers
 * (content-type, length, openai-processing-ms, x-ratelimit-*, retry-after…) pass, hop-by-hop and
 * infrastructure headers do not, and the upstream's request id becomes `openai-request-id`
 * (our own `x-request-id` names the gateway request).
 */
export function clientResponseHeaders(upstream: Record<string, string | string[] | undefined>, keepLength: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined || HOP_BY_HOP.has(name) || DROPPED_RESPONSE_HEADERS.has(name)) continue;
    if (name === 'content-length' && !keepLength) continue;
    out[name] = value;
  }
  const upstreamId = upstream['x-request-id'];
  if (typeof upstreamId === 'string') out['openai-request-id'] = upstreamId;
  return out;
}
