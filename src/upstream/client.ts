import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { UpstreamProtocol } from '../config/upstream-entry.js';

export interface UpstreamRequest {
  /** The model after aliases; selects the upstreams that serve it (undefined: any). */
  model: string | undefined;
  method: Dispatcher.HttpMethod;
  /** Path below /v1, query string included, e.g. `/chat/completions`. */
  path: string;
  headers: Record<string, string>;
  /** A Readable body cannot be replayed, so it gets one attempt only. */
  body: string | Buffer | Readable | null;
  signal: AbortSignal;
  /**
   * The upstream (and upstream key) holding an object this request uses: it goes there when that
   * upstream can serve it, so follow-ups reach the account that created the object.
   */
  affinity?: { upstream: string; upstreamKey: string | null };
  /** The API the body speaks; only upstreams speaking it take the request. Default `'openai'`. */
  protocol?: UpstreamProtocol;
}

export interface UpstreamAnswer {
  /** The answer of the attempt that counts, its body unread. */
  response: Dispatcher.ResponseData;
  /** Name of the upstream that answered. */
  upstream: string;
  attempts: number;
  /** Fingerprint of the upstream key that answered (see KeySlot.fingerprint). */
  upstreamKey: string | null;
}

/** What the routes need from the upstream side: send with the server-held key, and the secrets to redact. */
export interface UpstreamClient {
  send(request: UpstreamRequest): Promise<UpstreamAnswer>;
  /** Whether every upstream serving this model accepts `stream_options.include_usage`. */
  acceptsIncludeUsage(model: string | undefined): boolean;
  secrets(): readonly string[];
  close(): Promise<void>;
}
