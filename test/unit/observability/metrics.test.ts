import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayMetrics, type MetricSources, type RequestObservation } from '../../../src/observability/metrics.js';
import { knownModels } from '../../../src/observability/model-labels.js';

const sources = (overrides: Partial<MetricSources> = {}): MetricSources => {
  const known = knownModels([['gpt-4o-mini', 'gpt-4o']]);
  return { knownModels: () => known, upstreams: () => [], activeRelays: () => 0, usageQueueDepth: () => 0, databaseUp: () => true, appKeys: () => 0, ...overrides };
};

const request = (overrides: Partial<RequestObservation> = {}): RequestObservation => ({
  route: 'POST /v1/chat/completions',
  kind: 'chat',
  status: 200,
  model: 'gpt-4o-mini',
  caller: 'alice',
  upstream: 'openai',
  totalMs: 120,
  upstreamMs: 100,
  ttfbMs: 110,
  overheadMs: 0.4,
  attempts: 1,
  usage: { promptTokens: 12, completionTokens: 5, cachedTokens: 2, reasoningTokens: 1 },
  costUsd: 0.001,
  errorCode: undefined,
  ...overrides,
});

/** The lines of the exposition that start with `prefix`. */
const lines = (text: string, prefix: string): string[] => text.split('\n').filter((line) => line.startsWith(prefix));

describe('GatewayMetrics', () => {
  it('exposes counters and cumulative histogram buckets in the Prometheus text format', async () => {
    const metrics = new GatewayMetrics(sources());
    metrics.observe(request({ totalMs: 3 }));
    metrics.observe(request({ totalMs: 40 }));
    metrics.observe(request({ totalMs: 400_000 }));
    const text = await metrics.text();
    assert.deepEqual(lines(text, 'openai_api_requests_total{'), ['openai_api_requests_total{route="POST /v1/chat/completions",kind="chat",status_class="2xx",model="gpt-4o-mini",key="alice",upstream="openai"} 3']);
    const labels = 'route="POST /v1/chat/completions",status_class="2xx",model="gpt-4o-mini"';
    assert.ok(text.includes(`openai_api_request_duration_seconds_bucket{${labels},le="0.005"} 1\n`));
    assert.ok(text.includes(`openai_api_request_duration_seconds_bucket{${labels},le="0.05"} 2\n`));
    assert.ok(text.includes(`openai_api_request_duration_seconds_bucket{${labels},le="300"} 2\n`));
    assert.ok(text.includes(`openai_api_request_duration_seconds_bucket{${labels},le="+Inf"} 3\n`));
    assert.ok(text.includes(`openai_api_request_duration_seconds_count{${labels}} 3\n`));
    assert.ok(text.includes(`openai_api_request_duration_seconds_sum{${labels}} 400.043\n`));
    assert.ok(text.includes('openai_api_tokens_total{key="alice",model="gpt-4o-mini",type="cached"} 6\n'));
    assert.ok(text.includes('openai_api_cost_usd_total{key="alice",model="gpt-4o-mini"} 0.003\n'));
    assert.match(text, /^# TYPE openai_api_gateway_overhead_seconds histogram$/m);
  });

  it('shows no series for what a combination never had (no upstream time, tokens or retries for a refused request)', async () => {
    const metrics = new GatewayMetrics(sources());
    metrics.observe(request({ status: 403, upstream: undefined, upstreamMs: undefined, ttfbMs: undefined, attempts: undefined, usage: undefined, costUsd: null, errorCode: 'model_not_allowed' }));
    const text = await metrics.text();
    assert.deepEqual(lines(text, 'openai_api_upstream_duration_seconds'), []);
    assert.deepEqual(lines(text, 'openai_api_time_to_first_byte_seconds'), []);
    assert.deepEqual(lines(text, 'openai_api_tokens_total'), []);
    assert.deepEqual(lines(text, 'openai_api_upstream_retries_total'), []);
    assert.deepEqual(lines(text, 'openai_api_limit_rejections_total{'), ['openai_api_limit_rejections_total{reason="model_not_allowed",key="alice"} 1']);
    assert.deepEqual(lines(text, 'openai_api_errors_total{'), ['openai_api_errors_total{code="model_not_allowed"} 1']);
  });

  it('folds unknown models into `other` and counts combinations past the cap in one all-`other` series', async () => {
    const metrics = new GatewayMetrics(sources(), 3);
    for (let i = 0; i < 100; i++) metrics.observe(request({ model: `random-${i}` }));
    assert.equal(metrics.requestSeries, 1, 'every random name is `other`');
    metrics.observe(request({ caller: 'bob' }));
    metrics.observe(request({ caller: 'carol' }));
    for (let i = 0; i < 50; i++) metrics.observe(request({ caller: `key-${i}` }));
    assert.equal(metrics.requestSeries, 4, 'three combinations and the overflow series');
    const text = await metrics.text();
    assert.ok(text.includes('openai_api_requests_total{route="other",kind="other",status_class="other",model="other",key="other",upstream="other"} 50\n'));
    assert.ok(text.includes('model="other",key="alice",upstream="openai"} 100\n'));
  });

  it('counts requests in flight between started() and requestFinished(), and reads gauges at scrape time', async () => {
    let relays = 3;
    const metrics = new GatewayMetrics(
      sources({
        activeRelays: () => relays,
        usageQueueDepth: () => 7,
        databaseUp: () => false,
        upstreams: () => [{ name: 'openai', circuit: 'open', inFlight: 2, errorRate: 0.5, keys: [{ status: 'healthy', requests: 10, errors: 1 }, { status: 'cooling', requests: 5, errors: 4 }] }],
      }),
    );
    metrics.watchWebSockets(() => 1);
    metrics.started();
    metrics.started();
    metrics.requestFinished(request());
    let text = await metrics.text();
    assert.ok(text.includes('openai_api_requests_in_flight 1\n'));
    assert.ok(text.includes('openai_api_open_streams{type="http"} 2\n'));
    assert.ok(text.includes('openai_api_open_streams{type="websocket"} 1\n'));
    assert.ok(text.includes('openai_api_usage_queue_depth 7\n'));
    assert.ok(text.includes('openai_api_database_up 0\n'));
    assert.ok(text.includes('openai_api_upstream_circuit_state{upstream="openai",state="open"} 1\n'));
    assert.ok(text.includes('openai_api_upstream_circuit_state{upstream="openai",state="closed"} 0\n'));
    assert.ok(text.includes('openai_api_upstream_keys{upstream="openai",status="cooling"} 1\n'));
    assert.ok(text.includes('openai_api_upstream_attempts_total{upstream="openai"} 15\n'));
    assert.ok(text.includes('openai_api_upstream_attempt_failures_total{upstream="openai"} 5\n'));
    relays = 1;
    text = await metrics.text();
    assert.ok(text.includes('openai_api_open_streams{type="http"} 0\n'));
  });

  it('times usage flushes and counts failed ones and dropped records', async () => {
    const metrics = new GatewayMetrics(sources());
    metrics.usageFlushed(12, 40, false);
    metrics.usageFlushed(3, 0, true);
    metrics.usageDropped(5);
    const text = await metrics.text();
    assert.ok(text.includes('openai_api_usage_flush_duration_seconds_count 2\n'));
    assert.ok(text.includes('openai_api_usage_flush_failures_total 1\n'));
    assert.ok(text.includes('openai_api_usage_records_written_total 40\n'));
    assert.ok(text.includes('openai_api_usage_records_dropped_total 5\n'));
  });
});
