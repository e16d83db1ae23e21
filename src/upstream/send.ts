import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { TimeoutSettings } from './failure.js';
import type { Upstream } from './upstream.js';

export interface OutgoingRequest {
  method: Dispatcher.HttpMethod;
  /** Path below the upstream's base URL, query string included, e.g. `/chat/completions`. */
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer | Readable | null;
  signal?: AbortSignal;
}

/** Sends one request upstream with the server-held key; the caller's own credentials never get here. */
export function sendUpstream(upstream: Upstream, request: OutgoingRequest, key: string | undefined, timeouts: TimeoutSettings): Promise<Dispatcher.ResponseData> {
  const headers = key === undefined ? request.headers : { ...request.headers, authorization: `Bearer ${key}` };
  return upstream.dispatcher.request({
    origin: upstream.origin,
    path: upstream.basePath + request.path,
    method: request.method,
    headers,
    body: request.body ?? null,
    signal: request.signal,
    headersTimeout: timeouts.firstByteTimeoutMs,
    bodyTimeout: timeouts.idleTimeoutMs,
  });
}
