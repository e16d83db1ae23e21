import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { openDatabase } from '../../src/storage/database.js';
import { chatStreamEvents, FakeUpstream, sendJson } from '../helpers/fake-upstream.js';
import { spawnGateway, tempConfigDir, type SpawnedGateway } from '../helpers/gateway.js';

/**
 * 10,000 requests that all meet an upstream fault, 50 at a time, against the gateway as its own
 * process; then its resident memory and open sockets must come back near where they started, and
 * every request must have its usage record.
 */

const TOKEN = 'fault-soak-token';
const TOTAL = 10_000;
const WARM_UP = 2_000;
const CONCURRENCY = 50;
/**
 * RSS after a full GC may stay this much above the warmed-up baseline: V8 keeps heap pages it grew
 * into committed for a while (heapTotal), though the live heap is back. Measured: -3 to +24 MiB.
 */
const RSS_TOLERANCE = 40 * 1024 * 1024;
/** Live JS heap after a full GC may stay this much above the baseline; a leak of 1 KiB per request would be 10 MiB. */
const HEAP_TOLERANCE = 5 * 1024 * 1024;
/** Sockets may stay this many above the baseline (idle keep-alive connections the pool may still hold). */
const SOCKET_TOLERANCE = 5;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (bytes: number): string => (bytes / 1048576).toFixed(1);

function rssOf(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

/** Open file descriptors of the process that are sockets (listeners, clients, upstream connections). */
function socketsOf(pid: number): number {
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) count++;
    } catch {
      // closed between the listing and the readlink
    }
  }
  return count;
}

interface MemoryAfterGc {
  rss: number;
  heapUsed: number;
  external: number;
}

/** Runs a full GC in the spawned gateway (test/helpers/gc-probe.mjs) and reads its memory use then. */
async function memoryAfterGc(gateway: SpawnedGateway): Promise<MemoryAfterGc> {
  const seen = gateway.stderr().split('gc-probe ').length;
  gateway.child.kill('SIGUSR2');
  for (let i = 0; i < 100 && gateway.stderr().split('gc-probe ').length === seen; i++) await sleep(20);
  const line = gateway.stderr().split('gc-probe ').at(-1)!.split('\n')[0]!;
  const usage = JSON.parse(line) as MemoryAfterGc;
  // The GC hands freed pages back to the OS asynchronously; give it a moment, then read the kernel's figure.
  await sleep(500);
  return { rss: rssOf(gateway.child.pid!), heapUsed: usage.heapUsed, external: usage.external };
}

/** Waits until `read()` is at most `limit`, or `timeoutMs` passed; returns the last reading. */
async function settle(read: () => number, limit: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  let value = read();
  while (value > limit && Date.now() < until) {
    await sleep(200);
    value = read();
  }
  return value;
}

/** What a client may see for a fault: an HTTP status, and for streams the code of the final error event. */
interface Outcome {
  status: number;
  streamError?: string;
  /** The usage record: "status error_code". */
  record: string;
}

interface Fault {
  model: string;
  /** The fault's defined outcome first; then what it becomes when the fake upstream, starved of CPU in this busy process, acts only after the gateway's timeout. */
  outcomes: Outcome[];
}

const TIMED_OUT: Outcome = { status: 504, record: '504 upstream_timeout' };
const STREAM_TIMED_OUT: Outcome = { status: 200, streamError: 'upstream_timeout', record: '200 upstream_timeout' };
const REFUSED: Fault = { model: 'm-refused', outcomes: [{ status: 502, record: '502 upstream_unreachable' }] };
const RESET: Fault = { model: 'm-reset', outcomes: [{ status: 502, record: '502 upstream_unreachable' }, TIMED_OUT] };
const ERROR_500: Fault = { model: 'm-500', outcomes: [{ status: 500, record: '500 upstream_500' }, TIMED_OUT] };
const HANG: Fault = { model: 'm-hang', outcomes: [TIMED_OUT] };
const RESET_MID_STREAM: Fault = { model: 'm-reset-mid-stream', outcomes: [{ status: 200, streamError: 'upstream_unreachable', record: '200 upstream_unreachable' }, STREAM_TIMED_OUT, TIMED_OUT] };
const HANG_MID_STREAM: Fault = { model: 'm-hang-mid-stream', outcomes: [STREAM_TIMED_OUT, TIMED_OUT] };
const FAULTS = [REFUSED, RESET, ERROR_500, HANG, RESET_MID_STREAM, HANG_MID_STREAM];

/**
 * One cycle of the mix. Hangs are 1 in 10: undici checks its header and body timeouts on a
 * ~0.5 s tick, so a 0.5 s timeout holds a worker for up to ~1.5 s, and more hangs would only
 * make the soak slower, not harder.
 */
const CYCLE: Fault[] = [REFUSED, RESET, ERROR_500, RESET_MID_STREAM, HANG, REFUSED, RESET, ERROR_500, RESET_MID_STREAM, REFUSED, RESET, ERROR_500, RESET_MID_STREAM, HANG_MID_STREAM, REFUSED, RESET, ERROR_500, RESET_MID_STREAM, REFUSED, RESET];

describe('soak: 10,000 faulted requests', () => {
  it('leave RSS and open sockets back where they started, and every request metered', async () => {
    const dead = await FakeUpstream.start();
    await dead.close();
    const reset = await FakeUpstream.start();
    reset.script((_request, _response, socket) => void socket.resetAndDestroy(), Infinity);
    const failing = await FakeUpstream.start();
    failing.script((_request, response) => sendJson(response, 500, { error: { message: 'boom', type: 'server_error', param: null, code: null } }), Infinity);
    const silent = await FakeUpstream.start();
    silent.script(() => undefined, Infinity);
    const events = chatStreamEvents('m', 'one two three four', true).slice(0, 3);
    const cutStream = await FakeUpstream.start();
    cutStream.script((_request, response, socket) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(events.map((event) => `data: ${event}\n\n`).join(''), () => socket.resetAndDestroy());
    }, Infinity);
    const stalledStream = await FakeUpstream.start();
    stalledStream.script((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(events.map((event) => `data: ${event}\n\n`).join(''));
    }, Infinity);
    const healthy = await FakeUpstream.start();
    const fakes = [reset, failing, silent, cutStream, stalledStream, healthy];
    for (const fake of fakes) fake.requests.length = 0;

    const upstream = (name: string, url: string, model: string) => ({ name, type: 'openai', base_url: url, api_keys: [`sk-soak-${name}-0123456789`], models: [model] });
    const dir = tempConfigDir({
      upstreams: [
        upstream('refused', dead.url, 'm-refused'),
        upstream('reset', reset.url, 'm-reset'),
        upstream('failing', failing.url, 'm-500'),
        upstream('silent', silent.url, 'm-hang'),
        upstream('cut-stream', cutStream.url, 'm-reset-mid-stream'),
        upstream('stalled-stream', stalledStream.url, 'm-hang-mid-stream'),
        upstream('healthy', healthy.url, 'gpt-4o-mini'),
      ],
    });
    const file = join(dir, 'usage.sqlite');
    const gateway = await spawnGateway({
      cwd: dir,
      env: {
        ACCESS_TOKEN: TOKEN,
        DATABASE_URL: `sqlite:${file}`,
        MAX_ATTEMPTS: '1',
        CONNECT_TIMEOUT: '1',
        FIRST_BYTE_TIMEOUT: '0.5',
        IDLE_TIMEOUT: '0.5',
        SSE_KEEPALIVE: '60',
        // Every request must meet its fault: no circuit may send it elsewhere or refuse it.
        CIRCUIT_MIN_REQUESTS: '100000',
        USAGE_FLUSH_INTERVAL: '0.2',
        KEEP_ALIVE_TIMEOUT: '1',
        NODE_OPTIONS: `--expose-gc --import ${JSON.stringify(fileURLToPath(new URL('../helpers/gc-probe.mjs', import.meta.url)))}`,
      },
    });
    const pid = gateway.child.pid!;
    const unexpected: string[] = [];
    let late = 0;

    async function run(count: number): Promise<number> {
      const agent = new Agent({ connections: CONCURRENCY });
      let next = 0;
      let done = 0;
      const worker = async (): Promise<void> => {
        while (next < count) {
          const fault = CYCLE[next++ % CYCLE.length]!;
          const stream = fault.model.endsWith('-stream');
          try {
            const response = await request(`${gateway.url}/v1/chat/completions`, {
              dispatcher: agent,
              method: 'POST',
              headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
              body: JSON.stringify({ model: fault.model, messages: [{ role: 'user', content: 'Hi' }], stream }),
            });
            const text = await response.body.text();
            const seen = fault.outcomes.findIndex((outcome) => response.statusCode === outcome.status && (outcome.streamError === undefined || text.trimEnd().endsWith(`"code":"${outcome.streamError}"}}`)));
            if (seen === -1 && unexpected.length < 10) unexpected.push(`${fault.model}: ${response.statusCode} ${text.slice(-200)}`);
            if (seen > 0) late++;
          } catch (error) {
            if (unexpected.length < 10) unexpected.push(`${fault.model}: ${(error as Error).message}`);
          }
          done++;
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      await agent.close();
      return done;
    }

    try {
      const baseSockets = socketsOf(pid);
      // Warm up (JIT, lazily loaded modules, pools at their working size) before the memory baseline.
      assert.equal(await run(WARM_UP), WARM_UP);
      const base = await memoryAfterGc(gateway);

      const started = Date.now();
      assert.equal(await run(TOTAL), TOTAL);
      const seconds = (Date.now() - started) / 1000;
      assert.deepEqual(unexpected, [], 'every fault gave its defined outcome');
      const busySockets = socketsOf(pid);
      const busyRss = rssOf(pid);

      // Idle keep-alive connections (client and upstream side) close after a few seconds.
      const endSockets = await settle(() => socketsOf(pid), baseSockets, 15_000);
      const end = await memoryAfterGc(gateway);
      const delta = (after: number, before: number): string => `${after >= before ? '+' : ''}${mib(after - before)} MiB`;
      console.log(
        `soak: ${TOTAL} faulted requests in ${seconds.toFixed(1)} s at concurrency ${CONCURRENCY}; ` +
          `RSS ${mib(base.rss)} MiB after warm-up and GC, ${mib(busyRss)} MiB at the end before GC, ${mib(end.rss)} MiB after GC (${delta(end.rss, base.rss)}); ` +
          `heap used ${mib(base.heapUsed)} → ${mib(end.heapUsed)} MiB (${delta(end.heapUsed, base.heapUsed)}); ` +
          `sockets ${baseSockets} at start, ${busySockets} at the end, ${endSockets} settled; ${late} faults met the timeout first (the fake upstream was late)`,
      );
      assert.ok(endSockets <= baseSockets + SOCKET_TOLERANCE, `sockets: ${baseSockets} at start, ${endSockets} after`);
      assert.ok(end.rss <= base.rss + RSS_TOLERANCE, `RSS: ${mib(base.rss)} MiB before, ${mib(end.rss)} MiB after`);
      assert.ok(end.heapUsed <= base.heapUsed + HEAP_TOLERANCE, `heap used: ${mib(base.heapUsed)} MiB before, ${mib(end.heapUsed)} MiB after`);

      const ok = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"model":"gpt-4o-mini","messages":[]}' });
      assert.equal(ok.status, 200, 'the gateway still serves');
      await ok.text();

      gateway.child.kill('SIGTERM');
      assert.equal((await gateway.exited).code, 0);
      const database = await openDatabase(`sqlite:${file}`);
      const rows = await database.db.selectFrom('usage_records').select(['model', 'status', 'error_code']).execute();
      await database.close();
      assert.equal(rows.length, WARM_UP + TOTAL + 1, 'one usage record per request');
      const allowed = new Map<string | null, string[]>([['gpt-4o-mini', ['200 null']], ...FAULTS.map((fault): [string, string[]] => [fault.model, fault.outcomes.map((outcome) => outcome.record)])]);
      for (const row of rows) assert.ok(allowed.get(row.model)?.includes(`${row.status} ${row.error_code}`), `record ${row.model} ${row.status} ${row.error_code}`);
        } finally {
      gateway.child.kill('SIGKILL');
      await Promise.all(fakes.map((fake) => fake.close()));
    }
  });
});
