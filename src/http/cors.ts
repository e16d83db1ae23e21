import type { FastifyReply, FastifyRequest } from 'fastify';

const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';
const DEFAULT_ALLOWED_HEADERS = 'Authorization, Content-Type';
const EXPOSED_HEADERS =
  'x-request-id, openai-request-id, openai-processing-ms, x-openai-api-upstream, x-openai-api-attempts, x-openai-api-cache, retry-after, ' +
  'x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, ' +
  'x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens';
// A header list a browser may ask for in a preflight: plain header-name tokens only.
const HEADER_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/;

/** `*`, or a check of one origin (the configured list plus every origin an app key allows). */
export type OriginPolicy = '*' | { has(origin: string): boolean };

export function originPolicy(allowOrigin: '*' | readonly string[], keyOrigins?: { has(origin: string): boolean }): OriginPolicy {
  if (allowOrigin === '*') return '*';
  const listed = new Set(allowOrigin);
  return keyOrigins ? { has: (origin) => listed.has(origin) || keyOrigins.has(origin) } : listed;
}

/**
 * Sets CORS headers for one response. `*` never goes with credentials (browsers reject the pair);
 * a listed origin is echoed with `Vary: Origin`; any other origin gets no CORS headers at all,
 * so the browser blocks the response. Returns whether the origin was allowed.
 */
export function applyCors(request: FastifyRequest, reply: FastifyReply, policy: OriginPolicy): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  if (policy === '*') {
    reply.header('access-control-allow-origin', '*');
  } else if (policy.has(origin)) {
    reply.header('access-control-allow-origin', origin);
    reply.header('vary', 'Origin');
  } else {
    reply.header('vary', 'Origin');
    return false;
  }
  reply.header('access-control-expose-headers', EXPOSED_HEADERS);
  return true;
}

/** Answers a preflight with 204 and no auth; the real request is authenticated as usual. */
export function answerPreflight(request: FastifyRequest, reply: FastifyReply, policy: OriginPolicy): FastifyReply {
  if (applyCors(request, reply, policy)) {
    const requested = request.headers['access-control-request-headers'];
    const headers = typeof requested === 'string' && HEADER_LIST.test(requested.trim()) ? `${DEFAULT_ALLOWED_HEADERS}, ${requested.trim()}` : DEFAULT_ALLOWED_HEADERS;
    reply.header('access-control-allow-methods', ALLOWED_METHODS);
    reply.header('access-control-allow-headers', headers);
    reply.header('access-control-max-age', '600');
  }
  return reply.code(204).send();
}
