// The load generators: a µs-resolution probe (undici + process.hrtime) for latency and streams,
// autocannon for JSON throughput, and the slow-stream holder. All run in the bench process,
// which is pinned to the load generator's CPU.
import { hrtime } from 'node:process';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { MODEL } from './fake-upstream.mjs';
import { percentile, sortedCopy } from './stats.mjs';

const DONE_TAIL = 'data: [DONE]\n\n';

/** The request every target gets: a short chat, streamed or not (with usage, as OpenAI's SDKs ask). */
export function chatBody({ stream = false, slowIntervalMs } = {}) {
  const body = {
    model: MODEL,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Say hello to the benchmark in one short sentence.' },
    ],
    max_tokens: 64,
  };
  if (stream) Object.assign(body, { stream: true, stream_options: { include_usage: true } });
  if (slowIntervalMs !== undefined) body.user = `bench-slow-${slowIntervalMs}`;
  return JSON.stringify(body);
}

export function requestHeaders(target, body) {
  return { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), authorization: `Bearer ${target.clientKey}`, ...target.headers };
}

const nowUs = () => Number(hrtime.bigint()) / 1000;

/**
 * `connections` loops, each sending the next request when the last one ended, for `durationMs`.
 * Per request: time to the first body byte and to the end, in µs. A request counts as successful
 * when it is a 200 and (for streams) ends with `data: [DONE]`.
 */
export async function probe(target, { stream, connections, durationMs, path }) {
  const body = chatBody({ stream });
  const headers = requestHeaders(target, body);
  const pool = new Pool(target.origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const total = [];
  const first = [];
  let ok = 0;
  let failed = 0;
  let firstError;
  const started = nowUs();
  const stopAt = started + durationMs * 1000;

  const once = () =>
    new Promise((resolve) => {
      const t0 = nowUs();
      let firstAt;
      let tail = '';
      let status = 0;
      pool
        .request({ path, method: 'POST', headers, body })
        .then(({ statusCode, body: answer }) => {
          status = statusCode;
          answer.on('data', (chunk) => {
            if (firstAt === undefined) firstAt = nowUs();
            if (stream) tail = (tail + chunk.toString('latin1')).slice(-DONE_TAIL.length);
          });
          answer.once('end', () => {
            const end = nowUs();
            if (status === 200 && (!stream || tail === DONE_TAIL)) {
              ok++;
              total.push(end - t0);
              first.push((firstAt ?? end) - t0);
            } else {
              failed++;
              firstError ??= `status ${status}${stream ? `, stream ended with ${JSON.stringify(tail)}` : ''}`;
            }
            resolve();
          });
          answer.once('error', (error) => {
            failed++;
            firstError ??= error.message;
            resolve();
          });
        })
        .catch((error) => {
          failed++;
          firstError ??= error.message;
          resolve();
        });
    });

  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (nowUs() < stopAt) await once();
    }),
  );
  const elapsedS = (nowUs() - started) / 1e6;
  await pool.close();
  const totalSorted = sortedCopy(total);
  const firstSorted = sortedCopy(first);
  return {
    ok,
    failed,
    firstError,
    elapsedS,
    rps: ok / elapsedS,
    p50Us: percentile(totalSorted, 50),
    p99Us: percentile(totalSorted, 99),
    ttfbP50Us: percentile(firstSorted, 50),
    ttfbP99Us: percentile(firstSorted, 99),
  };
}

/** JSON throughput with autocannon (its latency histogram has 1 ms resolution: use `probe` for latency at c=1). */
export async function cannon(target, { connections, durationMs, path }) {
  const body = chatBody();
  // autocannon sets content-length itself; a second one would make every request a 400.
  const { 'content-length': _length, ...headers } = requestHeaders(target, body);
  const result = await autocannon({
    url: target.origin + path,
    method: 'POST',
    headers,
    body,
    connections,
    pipelining: 1,
    duration: durationMs / 1000,
    timeout: 10,
  });
  const ok = result['2xx'];
  const failed = result.non2xx + result.errors + result.timeouts;
  return {
    ok,
    failed,
    firstError: failed > 0 ? `non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}` : undefined,
    elapsedS: result.duration,
    rps: ok / result.duration,
    p50Us: result.latency.p50 * 1000,
    p99Us: result.latency.p99 * 1000,
  };
}

/**
 * Opens `count` paced streams through the target (ramped over `rampMs`, so the listen backlog
 * never overflows) and holds them until they end; `onAllOpen` runs when every one has its headers.
 */
export async function slowStreams(target, { count, intervalMs, rampMs, path, onAllOpen }) {
  const body = chatBody({ stream: true, slowIntervalMs: intervalMs });
  const headers = requestHeaders(target, body);
  const pool = new Pool(target.origin, { connections: count, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 120_000, bodyTimeout: 120_000 });
  let open = 0;
  let maxOpen = 0;
  let ok = 0;
  let failed = 0;
  let firstError;
  let allOpenAt;
  const started = Date.now();
  const one = () =>
    pool
      .request({ path, method: 'POST', headers, body })
      .then(
        ({ statusCode, body: answer }) =>
          new Promise((resolve) => {
            open++;
            maxOpen = Math.max(maxOpen, open);
            if (open === count && allOpenAt === undefined) {
              allOpenAt = Date.now() - started;
              onAllOpen?.();
            }
            let tail = '';
            answer.on('data', (chunk) => (tail = (tail + chunk.toString('latin1')).slice(-DONE_TAIL.length)));
            answer.once('end', () => {
              open--;
              if (statusCode === 200 && tail === DONE_TAIL) ok++;
              else {
                failed++;
                firstError ??= `status ${statusCode}, ended with ${JSON.stringify(tail)}`;
              }
              resolve();
            });
            answer.once('error', (error) => {
              open--;
              failed++;
              firstError ??= error.message;
              resolve();
            });
          }),
      )
      .catch((error) => {
        failed++;
        firstError ??= error.message;
      });
  const running = [];
  const batches = Math.max(1, Math.ceil(rampMs / 10));
  for (let batch = 0; batch < batches; batch++) {
    const from = Math.floor((batch * count) / batches);
    const to = Math.floor(((batch + 1) * count) / batches);
    for (let index = from; index < to; index++) running.push(one());
    if (batch < batches - 1) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await Promise.all(running);
  await pool.close();
  return { ok, failed, firstError, maxOpen, allOpenAfterMs: allOpenAt, elapsedS: (Date.now() - started) / 1000 };
}
