/**
 * Every error the gateway itself produces, in one place: HTTP status, OpenAI error `type`,
 * and the stable `code` clients see. `docs/errors.md` lists the same codes; a test keeps
 * the two in sync.
 */
export interface ErrorSpec {
  readonly status: number;
  /** OpenAI's `error.type`, so SDKs classify our errors like upstream ones. */
  readonly type: string;
  readonly description: string;
  /**
   * Raised only before the upstream has a whole request (refused by the gateway, or an upload
   * cut on its way): nothing was billed upstream, so a usage record with this code counts
   * toward no budget or daily request count when limits are reloaded from the database.
   */
  readonly refusedBeforeUpstream?: true;
}

export const ERROR_CATALOGUE = {
  invalid_json: { status: 400, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'The body is not valid JSON.' },
  invalid_content_type: { status: 400, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'The Content-Type is not one the endpoint accepts.' },
  invalid_request: { status: 400, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'A field is missing or has the wrong type; the message names it.' },
  reload_refused: { status: 400, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'The admin API could not apply the new configuration (invalid, unsafe, or its keys could not be synced); the previous one keeps serving.' },
  missing_api_key: { status: 401, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'No key was sent (Authorization: Bearer <key>).' },
  invalid_api_key: { status: 401, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'The key is unknown, disabled or expired.' },
  origin_not_allowed: { status: 403, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'The key may not be used from this browser origin.' },
  csrf_refused: { status: 403, type: 'invalid_request_error', refusedBeforeUpstream: true, description: "A change to the admin API made with the web console's session cookie came from another origin or without the session's x-csrf-token header." },
  model_not_allowed: { status: 403, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'The key may not use this model.' },
  endpoint_not_allowed: { status: 403, type: 'invalid_request_error', refusedBeforeUpstream: true, description: "The key may not use this endpoint: its model list, budget or ceiling cannot be enforced there (grant it with the key's `endpoints`)." },
  model_not_priced: { status: 403, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'The key has a USD budget and the model has no price (set `prices` or `fallback_price`).' },
  not_found: { status: 404, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'No such route (on the admin API: no key of that name).' },
  model_not_found: { status: 404, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'No upstream serves this model.' },
  object_not_found: { status: 404, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'No such object for this key (objects are visible only to the key that created them).' },
  conversation_not_found: { status: 404, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'No such /api/chat conversation for this key (it expired, was deleted, or belongs to another key).' },
  conflict: { status: 409, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'The change conflicts with what exists (a name in use, a key managed in config.json).' },
  body_too_large: { status: 413, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'The body is larger than the configured limit.' },
  upgrade_required: { status: 426, type: 'invalid_request_error', refusedBeforeUpstream: true, description: 'A WebSocket upgrade where no upstream has a WebSocket (a path without one, or providers without WebSockets); clients such as Codex fall back to HTTP at once.' },
  rate_limit_exceeded: { status: 429, type: 'requests', refusedBeforeUpstream: true, description: 'A per-key rate limit (rpm, tpm, rpd) is used up; see Retry-After.' },
  too_many_sign_ins: { status: 429, type: 'requests', refusedBeforeUpstream: true, description: 'Too many wrong admin tokens from this address at the web console sign-in; see Retry-After.' },
  budget_exceeded: { status: 429, type: 'insufficient_quota', refusedBeforeUpstream: true, description: 'A per-key budget (tokens or USD) is used up for its period.' },
  internal_error: { status: 500, type: 'server_error', description: 'A bug in the gateway; the request id is in the log.' },
  upstream_error: { status: 502, type: 'server_error', description: 'The upstream answered with an error or an unusable body.' },
  upstream_unreachable: { status: 502, type: 'server_error', description: 'The upstream could not be reached (refused, reset, DNS, TLS).' },
  storage_unavailable: { status: 503, type: 'server_error', refusedBeforeUpstream: true, description: 'A database the answer depends on (keys, usage, object owners) is unreachable; for metering, only when fail_open is off.' },
  limits_unavailable: { status: 503, type: 'server_error', refusedBeforeUpstream: true, description: 'The Redis that instances share limits and budgets through (redis_url) is unreachable and fail_open is off, so a key with limits cannot be admitted.' },
  shutting_down: { status: 503, type: 'server_error', description: 'The gateway shut down (past drain_timeout) while the answer was still being relayed; the cut answer is charged its estimated usage.' },
  upstream_timeout: { status: 504, type: 'server_error', description: 'The upstream did not connect, answer or continue in time.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/**
 * The codes raised only before the upstream has a whole request, derived from the catalogue.
 * Usage records carrying one of them are left out of the totals budgets are reloaded from.
 */
export const REFUSED_BEFORE_UPSTREAM: readonly ErrorCode[] = Object.freeze(
  (Object.entries(ERROR_CATALOGUE) as Array<[ErrorCode, ErrorSpec]>).filter(([, spec]) => spec.refusedBeforeUpstream === true).map(([code]) => code),
);

/**
 * The one entry for the upstream's own error answers (status 400 and up) that /v1 passes through
 * unchanged, status and body: the gateway renders nothing, and the request's usage record and
 * log line carry `upstream_<status>` (`upstream_429`, `upstream_500`). /api/chat does not pass
 * them through: it answers `upstream_error` with the upstream's message.
 */
export const UPSTREAM_STATUS = {
  code: 'upstream_<status>',
  status: '4xx, 5xx',
  type: "the upstream's",
  description: "The upstream answered with this error status; /v1 passed its answer through unchanged (recorded, never rendered by the gateway).",
} as const;

/** The code recorded for an upstream error answer passed through (see UPSTREAM_STATUS). */
export type UpstreamStatusCode = `upstream_${number}`;

/** Every code a usage record or log line can carry: the catalogue's and `upstream_<status>`. */
export type RecordedErrorCode = ErrorCode | UpstreamStatusCode;

/** `upstream_429` for an upstream's 429 answer passed through; `status` is an HTTP status of 400 or more. */
export function upstreamStatusCode(status: number): UpstreamStatusCode {
  if (!Number.isInteger(status) || status < 400 || status > 999) throw new RangeError(`not an error status: ${status}`);
  return `upstream_${status}`;
}

const UPSTREAM_STATUS_CODE = /^upstream_[4-9]\d\d$/;

/** True for a code of the catalogue or `upstream_<status>`: what usage records and log lines may carry. */
export function isRecordedErrorCode(code: string): code is RecordedErrorCode {
  return Object.hasOwn(ERROR_CATALOGUE, code) || UPSTREAM_STATUS_CODE.test(code);
}
