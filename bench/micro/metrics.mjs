// Per-request cost of the metrics on the request path, in µs/op: `started()` + `requestFinished()`
// of GatewayMetrics (observability/metrics.ts) for a mix of 10 keys × 8 models × 3 statuses (the
// series resolved once, as in production), plus the overhead header written into a head
// (observability/overhead.ts). Best of several runs. Set against the gateway's CPU per request
// from `npm run bench` (--request-us, default the 164 µs JSON figure of bench/RESULTS.md), it
// says whether the metrics stay within issue 14's budget of 3 % — a figure the full benchmark
// cannot resolve on a shared machine (its rounds spread by more than that).
//
//   node --import tsx bench/micro/metrics.mjs [--runs=7] [--ops=200000] [--request-us=164]
import { performance } from 'node:perf_hooks';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=')));
const runs = Number(args.runs ?? 7);
const ops = Number(args.ops ?? 200_000);
const requestUs = Number(args['request-us'] ?? 164);

const { GatewayMetrics } = await import('../../src/observability/metrics.ts');
const { stampOverhead } = await import('../../src/observability/overhead.ts');

const MODELS = ['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'gpt-4.1-mini', 'o3-mini', 'text-embedding-3-small', 'gpt-5', 'some-unknown-model'];
const known = new Map(MODELS.slice(0, 7).map((model) => [model, model]));
const metrics = new GatewayMetrics({ knownModels: () => known, upstreams: () => [], activeRelays: () => 0, usageQueueDepth: () => 0, databaseUp: () => true, appKeys: () => 10 });
const observations = [];
for (let i = 0; i < 240; i++) {
  const status = [200, 200, 200, 429, 500][i % 5];
  observations.push({
    route: 'POST /v1/chat/completions', kind: 'chat', status, model: MODELS[i % MODELS.length], caller: `key-${i % 10}`, upstream: 'openai',
    totalMs: 12.5 + (i % 7), upstreamMs: 11.9 + (i % 7), ttfbMs: status === 200 ? 12.1 : undefined, overheadMs: 0.31, attempts: 1 + (i % 13 === 0 ? 1 : 0),
    usage: status === 200 ? { promptTokens: 520, completionTokens: 180, cachedTokens: 0, reasoningTokens: 0 } : undefined,
    costUsd: status === 200 ? 0.000186 : null, errorCode: status === 200 ? undefined : status === 429 ? 'rate_limit_exceeded' : 'upstream_500',
  });
}

function bestOf(label, body) {
  let best = Infinity;
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    body();
    best = Math.min(best, ((performance.now() - started) * 1000) / ops);
  }
  return best;
}

const observeUs = bestOf('observe', () => {
  for (let i = 0; i < ops; i++) {
    metrics.started();
    metrics.requestFinished(observations[i % observations.length]);
  }
});
const response = new ServerResponse(new IncomingMessage(new Socket()));
const stampUs = bestOf('stamp', () => {
  for (let i = 0; i < ops; i++) {
    const head = [200, { 'content-type': 'application/json', 'content-length': '632', 'x-request-id': 'req_123', 'x-openai-api-upstream': 'openai' }];
    stampOverhead(response, head, 0.3125);
  }
});
// The head array and its headers object are built by the route anyway: measured alone, to subtract.
const headUs = bestOf('head', () => {
  let sink = 0;
  for (let i = 0; i < ops; i++) {
    const head = [200, { 'content-type': 'application/json', 'content-length': '632', 'x-request-id': 'req_123', 'x-openai-api-upstream': 'openai' }];
    sink += head.length;
  }
  if (sink < 0) console.log(sink);
});
const perRequest = observeUs + Math.max(0, stampUs - headUs);
console.log(`metrics started()+requestFinished(): ${observeUs.toFixed(3)} µs/request (best of ${runs} × ${ops})`);
console.log(`overhead header into the head:       ${Math.max(0, stampUs - headUs).toFixed(3)} µs/request`);
console.log(`together: ${perRequest.toFixed(3)} µs = ${((perRequest / requestUs) * 100).toFixed(2)} % of ${requestUs} µs CPU per request (budget 3 %)`);

// A scrape, off the request path: the text of every series after the loop above (process metrics included).
let scrapeMs = Infinity;
let lines = 0;
for (let run = 0; run < runs; run++) {
  const started = performance.now();
  const text = await metrics.text();
  scrapeMs = Math.min(scrapeMs, performance.now() - started);
  lines = text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).length;
}
console.log(`a scrape: ${scrapeMs.toFixed(2)} ms for ${lines} sample lines`);
