#!/usr/bin/env node
// Micro-benchmark of the upstream pool's own per-request work: ns per `UpstreamPool.send()` with
// 1, 10 and 50 upstreams (every one serving the model, the worst case for choosing), 1 and 10
// keys each. The network is left out: each member's dispatcher is swapped for a stub answering
// 200 at once with an already-closed body, so what is timed is routing, choosing a member and
// a key, the attempt's bookkeeping (load, circuit, health) and the answer. A second table times
// the choosing step alone (route, then upstream and key), which the split made O(log upstreams).
//
//   node --import tsx bench/micro/pool-choice.mjs [--src DIR]... [--rounds N] [--requests N]
//
// `--src` (default: this checkout's src/) may be given twice, e.g. with the previous commit's
// src/ (`git archive HEAD src | tar -x -C /tmp/before`), to compare before and after in one
// process: rounds alternate between every implementation and shape, so drift in the machine's
// speed (other work on shared cores) hits them all alike.
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';

const { values } = parseArgs({
  options: {
    src: { type: 'string', multiple: true, default: [join(import.meta.dirname, '..', '..', 'src')] },
    rounds: { type: 'string', default: '7' },
    requests: { type: 'string', default: '100000' },
  },
});
const sources = values.src.map((src) => (isAbsolute(src) ? src : resolve(src)));
const rounds = Number(values.rounds);
const requests = Number(values.requests);
const implementations = [];
for (const src of sources) implementations.push({ src, UpstreamPool: (await import(pathToFileURL(join(src, 'upstream', 'pool.ts')).href)).UpstreamPool });

const SETTINGS = { maxAttempts: 3, retryBaseDelayMs: 100, cooldownMs: 30_000, circuitErrorRatio: 0.5, circuitMinRequests: 10, circuitWindowMs: 30_000, circuitOpenMs: 30_000 };
const TIMEOUTS = { connectTimeoutMs: 2_000, firstByteTimeoutMs: 5_000, idleTimeoutMs: 5_000 };
// Info level, as in production: the debug line per answer must cost nothing.
const logger = pino({ level: 'info', base: undefined }, { write: () => undefined });

const RESPONSE = { statusCode: 200, headers: {}, body: { destroyed: true } };
const stub = { request: () => Promise.resolve(RESPONSE), close: () => Promise.resolve() };

function buildPool(UpstreamPool, upstreams, keys) {
  const entries = Array.from({ length: upstreams }, (_, i) => ({
    name: `u${i}`,
    type: 'openai',
    baseUrl: `http://127.0.0.1:${10_000 + i}`,
    apiKeys: Array.from({ length: keys }, (_, k) => `sk-bench-${i}-key-${String(k).padStart(6, '0')}`),
    weight: 1 + (i % 3),
    models: ['*'],
    headers: {},
    apiVersion: undefined,
    deployments: {},
    proxy: undefined,
    includeUsage: true,
  }));
  const pool = new UpstreamPool(entries, SETTINGS, { logger, timeouts: TIMEOUTS });
  // Why reach inside: the members' undici Pools are built from the config; the stub stands in
  // for the network. The field moved in the split, so look in both places.
  const members = pool.members ?? pool.router.members;
  for (const member of members) {
    const closing = member.connection.dispatcher;
    void closing.close();
    Object.defineProperty(member.connection, 'dispatcher', { value: stub });
  }
  return pool;
}

const signal = new AbortController().signal;
const request = { model: 'gpt-4o-mini', method: 'POST', path: '/chat/completions', headers: { 'content-type': 'application/json' }, body: '{"model":"gpt-4o-mini","messages":[]}', signal };

/**
 * The choosing step alone, as send() performs it before the attempt: route the request, then
 * choose an upstream and key. The pool before the split (c305c0b) did it in private methods.
 */
function chooseStep(pool) {
  if (pool.router) return () => pool.router.choose(pool.router.route(request));
  return () => pool.select(pool.candidatesFor(request.model), undefined, { keys: [], members: [] });
}

function timeChoices(choose, count) {
  let sink = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) sink += choose().index;
  const elapsed = Number(process.hrtime.bigint() - started);
  if (sink < 0) throw new Error('unreachable: keeps the result alive');
  return elapsed / count;
}

async function timeSends(pool, count) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await pool.send(request);
  return Number(process.hrtime.bigint() - started) / count;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const shapes = [];
for (const { src, UpstreamPool } of implementations) {
  for (const keys of [1, 10]) for (const upstreams of [1, 10, 50]) shapes.push({ src, upstreams, keys, pool: buildPool(UpstreamPool, upstreams, keys), samples: [], choices: [] });
}
for (const shape of shapes) {
  await timeSends(shape.pool, requests / 4);
  timeChoices(chooseStep(shape.pool), requests);
}
for (let round = 0; round < rounds; round++) {
  for (const shape of shapes) {
    shape.samples.push(await timeSends(shape.pool, requests));
    shape.choices.push(timeChoices(chooseStep(shape.pool), requests * 4));
  }
}

function report(title, field) {
  process.stdout.write(`${title}: ns per request, median of ${rounds} alternating rounds\n`);
  for (const { src } of implementations) {
    process.stdout.write(`${src}\n`);
    for (const keys of [1, 10]) {
      const row = shapes.filter((shape) => shape.src === src && shape.keys === keys);
      const base = median(row[0][field]);
      const cells = row.map((shape) => `${String(shape.upstreams).padStart(2)} upstreams ${String(Math.round(median(shape[field]))).padStart(5)}`);
      const growth = Math.round((median(row.at(-1)[field]) / base - 1) * 100);
      process.stdout.write(`  ${String(keys).padStart(2)} key${keys === 1 ? ' ' : 's'} each: ${cells.join(' | ')}   1 → 50 upstreams: ${growth >= 0 ? '+' : ''}${growth} %\n`);
    }
  }
}
report(`pool.send() with a stub dispatcher (${requests} requests a round)`, 'samples');
report(`choosing alone: route + upstream + key (${requests * 4} choices a round)`, 'choices');
await Promise.all(shapes.map((shape) => shape.pool.close()));
