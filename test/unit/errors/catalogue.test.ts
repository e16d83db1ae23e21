import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CATALOGUE, GatewayError, REFUSED_BEFORE_UPSTREAM, isRecordedErrorCode, upstreamStatusCode, type ErrorCode } from '../../../src/errors/index.js';

/** The untyped list gateway.ts kept before "refused before upstream" became a property of the catalogue. */
const OLD_LITERAL_LIST = ['missing_api_key', 'invalid_api_key', 'invalid_json', 'invalid_content_type', 'invalid_request', 'origin_not_allowed', 'model_not_allowed', 'rate_limit_exceeded', 'budget_exceeded', 'storage_unavailable', 'body_too_large', 'not_found', 'model_not_found', 'shutting_down'];

describe('refused before upstream', () => {
  it('is the old list, plus the codes raised before sending, minus shutting_down', () => {
    const added: ErrorCode[] = [
      // The endpoint table refuses the key before anything is sent (routes/v1.ts).
      'endpoint_not_allowed',
      // Admission and the batch input check refuse an unpriced model for a USD budget before sending.
      'model_not_priced',
      // Ownership refuses another key's object while the request is prepared.
      'object_not_found',
      // A WebSocket upgrade is refused before anything is sent (routes/v1.ts).
      'upgrade_required',
      // Raised by the admin API only, which never calls an upstream.
      'conflict',
      'reload_refused',
      // Raised by the web console's admin listener only (routes/console.ts, routes/admin.ts).
      'csrf_refused',
      'too_many_sign_ins',
      // Raised by the conversation endpoints of /api/chat, which never call an upstream.
      'conversation_not_found',
      // Admission refuses a limited key while the shared Redis is away (limits/failover-limit-store.ts).
      'limits_unavailable',
    ];
    // Raised only by ActiveStreams.stopAll(): a stream the upstream was already answering, cut at
    // drain_timeout and recorded with its estimated usage. Leaving it out of the reloaded totals let
    // the streams cut by a shutdown escape the budget at the very restart that reloads it.
    const removed = ['shutting_down'];
    const expected = [...OLD_LITERAL_LIST.filter((code) => !removed.includes(code)), ...added].sort();
    assert.deepEqual([...REFUSED_BEFORE_UPSTREAM].sort(), expected);
  });

  it('never includes a code that can be raised while the upstream answers', () => {
    for (const code of ['internal_error', 'upstream_error', 'upstream_unreachable', 'upstream_timeout', 'shutting_down'] as const) {
      assert.ok(!REFUSED_BEFORE_UPSTREAM.includes(code), code);
    }
  });

  it('is derived from the catalogue entries, so a new entry declares it or is counted', () => {
    for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
      assert.equal(REFUSED_BEFORE_UPSTREAM.includes(code as ErrorCode), 'refusedBeforeUpstream' in spec && spec.refusedBeforeUpstream === true, code);
    }
    assert.ok(Object.isFrozen(REFUSED_BEFORE_UPSTREAM));
  });
});

describe('upstream statuses passed through', () => {
  it('are recorded as upstream_<status>, one catalogue entry for every status', () => {
    assert.equal(upstreamStatusCode(429), 'upstream_429');
    assert.equal(upstreamStatusCode(500), 'upstream_500');
    assert.ok(isRecordedErrorCode(upstreamStatusCode(400)));
    assert.ok(isRecordedErrorCode(upstreamStatusCode(599)));
  });

  it('refuses a status that is not an error', () => {
    for (const status of [200, 399, 1000, 404.5, Number.NaN]) assert.throws(() => upstreamStatusCode(status), RangeError, String(status));
  });

  it('makes every code a usage record can carry recognisable, and nothing else', () => {
    for (const code of Object.keys(ERROR_CATALOGUE)) assert.ok(isRecordedErrorCode(code), code);
    for (const code of ['upstream_closed', 'upstream_200', 'upstream_42', 'upstream_5000', 'upstream_', 'toString', '__proto__', 'upstream_<status>']) {
      assert.ok(!isRecordedErrorCode(code), code);
    }
  });

  it('keeps GatewayError on catalogue codes with the catalogue status', () => {
    const error = new GatewayError('reload_refused', 'bad config');
    assert.deepEqual([error.status, error.type, error.code], [400, 'invalid_request_error', 'reload_refused']);
  });
});
