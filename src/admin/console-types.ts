import type { KeyDefaults } from '../domain/key-settings.js';

/**
 * The admin API's answers as they go over the wire (snake_case fields, ISO times), declared once:
 * the server modules that build them import these, and so does the web console (web/src/api.ts,
 * type-only, so the bundle gets none of the server). Pure types; nothing here may import a module
 * that needs Node, since web/ is type-checked with the DOM library alone.
 */

/** What the CLI and the admin API show of a key, in the snake_case of config.json: never the secret or its hash. */
export interface PublicKey {
  name: string;
  id: string;
  prefix: string;
  source: string;
  enabled: boolean;
  expires_at: string | null;
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  rpd: number | null;
  budget_tokens: number | null;
  budget_usd: number | null;
  budget_period: string | null;
  bot_desc: string | null;
  persona_mode: string | null;
  defaults: KeyDefaults | null;
  max_tokens_ceiling: number | null;
  allow_origin: string[] | null;
  endpoints: string[] | null;
  metadata: Record<string, unknown> | null;
  /** Conversation memory of /api/chat (issue 16); null takes the gateway's setting. */
  memory: boolean | null;
  memory_max_tokens: number | null;
  memory_max_turns: number | null;
  memory_ttl: number | null;
  /** Response cache: seconds answers are kept (0 = off), null takes the gateway's cache_ttl; the group of keys sharing answers. */
  cache_ttl: number | null;
  cache_group: string | null;
  created_at: string;
  updated_at: string;
  last_used_at: string | null;
}

/** A key as created or rotated: the one answer that carries its secret (`key`). */
export interface IssuedKey extends PublicKey {
  key: string;
}

/** One row of the usage report; rows come sorted by group in JavaScript string order (so days and hours ascend). */
export interface UsageReportRow {
  /**
   * Model, key or upstream name, UTC day `YYYY-MM-DD` or UTC hour `YYYY-MM-DDTHH`; records
   * without a model, key or upstream group as `(none)`.
   */
  group: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  totalTokens: number;
  /** Sum of the known costs; null only when no record in the group has a cost. */
  costUsd: number | null;
  /** Records with status >= 400 or an error code (a stream that failed after its 200). */
  errors: number;
}

/** What the console's live tail shows of a finished request: metadata only, never a body or a key. */
export interface RecentRequest {
  time: string;
  request_id: string;
  method: string;
  /** The path without its query string (which may carry `key=`). */
  path: string;
  status: number;
  caller: string | null;
  model: string | null;
  upstream: string | null;
  latency_ms: number;
  /** Waiting for the upstream's response head; null when nothing was sent upstream. */
  upstream_ms: number | null;
  /** The gateway's own time (as in the `x-openai-api-overhead-ms` header). */
  overhead_ms: number | null;
  total_tokens: number | null;
  error: string | null;
}

/** Median and 95th percentile, in milliseconds; null without samples. */
export interface Percentiles {
  p50: number | null;
  p95: number | null;
}

/** GET /admin/latency: percentiles over the finished requests this instance keeps in memory. */
export interface LatencyAnswer {
  /** Requests the figures are computed from (those kept, within the window). */
  samples: number;
  /** The oldest of them (ISO), null without samples. */
  oldest: string | null;
  latency_ms: Percentiles;
  overhead_ms: Percentiles;
  upstream_ms: Percentiles;
}

/** One key of one upstream in GET /admin/status: never the key, only its index and last four characters. */
export interface KeyStateReport {
  index: number;
  /** `…abcd`; `…` for a key too short to show any of it; `none` for a keyless upstream. */
  hint: string;
  status: 'healthy' | 'cooling' | 'disabled';
  /** ISO time a cooling key is used again. */
  coolingUntil?: string;
  /** Why a key is disabled (e.g. "HTTP 401"), and since when (ISO); it stays so until reload. */
  disabledReason?: string;
  disabledAt?: string;
  inFlight: number;
  /** Since start. */
  requests: number;
  errors: number;
}

/** A failed upstream attempt as GET /admin/status shows it: any key in its message is masked. */
export interface UpstreamErrorReport {
  /** ISO time. */
  time: string;
  /** The upstream's HTTP status; null when it gave no answer. */
  status: number | null;
  /** A code: `insufficient_quota`, `rate_limited`, or the transport's (`UND_ERR_CONNECT_TIMEOUT`, `ECONNREFUSED`). */
  code: string | null;
  message: string;
  /** Which of the upstream's keys the attempt used. */
  keyIndex: number;
}

export interface UpstreamStateReport {
  name: string;
  type: string;
  weight: number;
  /** half-open: the pause is over and the next request (one at a time) probes the upstream. */
  circuit: 'closed' | 'open' | 'half-open';
  /** ISO time an open circuit lets a probe through. */
  circuitOpenUntil?: string;
  inFlight: number;
  /** Over the circuit window (`circuit_window` seconds): attempts, failed attempts (connect errors, timeouts, 5xx), their ratio. */
  windowSeconds: number;
  requests: number;
  errors: number;
  errorRate: number;
  keys: KeyStateReport[];
  /** The last failed attempts, newest first (kept in memory, a few per upstream). */
  lastErrors: UpstreamErrorReport[];
}

/** GET /admin/status. Other parts of the gateway may add fields of their own. */
export interface StatusAnswer {
  storage: { healthy: boolean; reason: string | null; pending_usage_records: number };
  keys: number;
  active_streams: number;
  upstreams: UpstreamStateReport[];
  [more: string]: unknown;
}

/** POST and GET /console/session. */
export interface SessionAnswer {
  csrf_token: string;
  expires_at: string;
}

/** POST /admin/reload. */
export interface ReloadAnswer {
  ok: true;
  needs_restart: string[];
}

/** The usage report's groupings (GET /admin/usage?by=). */
export const USAGE_GROUPINGS = ['model', 'day', 'hour', 'key', 'upstream'] as const;
export type UsageGroupBy = (typeof USAGE_GROUPINGS)[number];
