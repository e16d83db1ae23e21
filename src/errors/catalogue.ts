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
}

export const ERROR_CATALOGUE = {
  invalid_json: { status: 400, type: 'invalid_request_error', description: 'The body is not valid JSON.' },
  invalid_content_type: { status: 400, type: 'invalid_request_error', description: 'The Content-Type is not one the endpoint accepts.' },
  invalid_request: { status: 400, type: 'invalid_request_error', description: 'A field is missing or has the wrong type; the message names it.' },
  missing_api_key: { status: 401, type: 'invalid_request_error', description: 'No key was sent (Authorization: Bearer <key>).' },
  invalid_api_key: { status: 401, type: 'invalid_request_error', description: 'The key is unknown, disabled or expired.' },
  origin_not_allowed: { status: 403, type: 'invalid_request_error', description: 'The key may not be used from this browser origin.' },
  model_not_allowed: { status: 403, type: 'invalid_request_error', description: 'The key may not use this model.' },
  endpoint_not_allowed: { status: 403, type: 'invalid_request_error', description: "The key may not use this endpoint: its model list, budget or ceiling cannot be enforced there (grant it with the key's `endpoints`)." },
  model_not_priced: { status: 403, type: 'invalid_request_error', description: 'The key has a USD budget and the model has no price (set `prices` or `fallback_price`).' },
  not_found: { status: 404, type: 'invalid_request_error', description: 'No such route.' },
  model_not_found: { status: 404, type: 'invalid_request_error', description: 'No upstream serves this model.' },
  object_not_found: { status: 404, type: 'invalid_request_error', description: 'No such object for this key (objects are visible only to the key that created them).' },
  conflict: { status: 409, type: 'invalid_request_error', description: 'The change conflicts with what exists (a name in use, a key managed in config.json).' },
  body_too_large: { status: 413, type: 'invalid_request_error', description: 'The body is larger than the configured limit.' },
  rate_limit_exceeded: { status: 429, type: 'requests', description: 'A per-key rate limit (rpm, tpm, rpd) is used up; see Retry-After.' },
  budget_exceeded: { status: 429, type: 'insufficient_quota', description: 'A per-key budget (tokens or USD) is used up for its period.' },
  internal_error: { status: 500, type: 'server_error', description: 'A bug in the gateway; the request id is in the log.' },
  upstream_error: { status: 502, type: 'server_error', description: 'The upstream answered with an error or an unusable body.' },
  upstream_unreachable: { status: 502, type: 'server_error', description: 'The upstream could not be reached (refused, reset, DNS, TLS).' },
  storage_unavailable: { status: 503, type: 'server_error', description: 'The usage database is unreachable and fail_open is off.' },
  shutting_down: { status: 503, type: 'server_error', description: 'The gateway is draining for shutdown.' },
  upstream_timeout: { status: 504, type: 'server_error', description: 'The upstream did not connect, answer or continue in time.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;
