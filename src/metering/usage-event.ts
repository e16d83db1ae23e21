import type { RecordedErrorCode } from '../errors/index.js';
import type { Usage } from '../streaming/usage.js';

/** Whether token counts came from the upstream, were estimated by us (a stream cut early), are unknown, or are a cached answer's (served by the response cache at no cost). */
export type UsageSource = 'upstream' | 'estimated' | 'none' | 'cache';

/** One finished request, as metering records it. */
export interface UsageEvent {
  requestId: string;
  time: Date;
  /** App key id, when the caller used one. */
  keyId: string | undefined;
  /** Caller name safe to store: a key name, `access_token#N` or `anonymous`. */
  caller: string;
  route: string;
  model: string | undefined;
  upstream: string | undefined;
  status: number;
  usage: Usage | undefined;
  /** USD for this usage from the price table; null when the model's price is unknown. */
  costUsd: number | null;
  usageSource: UsageSource;
  latencyMs: number;
  ttfbMs: number | undefined;
  aborted: boolean;
  errorCode: RecordedErrorCode | undefined;
  /** The /api/chat conversation the request named, if any. */
  conversationId?: string | undefined;
}

/** Where finished requests go. `record` must never block or throw on the request path. */
export interface Meter {
  record(event: UsageEvent): void;
  /** Writes out everything recorded so far. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
