// 1,000 concurrent slow streams through one fresh target: memory before, with all open and after,
// and the event-loop delay of Node targets meanwhile (through the loop monitor preloaded into them).
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { upstreamStats } from './check.mjs';
import { STREAM_EVENT_COUNT } from './fake-upstream.mjs';
import { slowStreams } from './load.mjs';
import { rssBytes } from './proc.mjs';
import { BASELINE_TOLERANCE } from './report.mjs';
import { CHAT_PATH } from './targets.mjs';

/** Sends a command to a Node target's loop monitor (see loop-monitor.mjs) and waits for its report. */
async function monitor(target, command) {
  if (!target.loopReport) return undefined;
  rmSync(target.loopReport, { force: true });
  writeFileSync(`${target.loopReport}.cmd`, command);
  process.kill(target.server.pid, 'SIGUSR2');
  if (command === 'start') return undefined;
  for (let waited = 0; waited < 5000; waited += 20) {
    if (existsSync(target.loopReport)) return JSON.parse(readFileSync(target.loopReport, 'utf8'));
    await sleep(20);
  }
  return undefined;
}

/** RSS after a full GC in Node targets (what is really retained), plain RSS elsewhere. */
async function settledRss(target) {
  const report = await monitor(target, 'gc');
  return { rss: rssBytes(target.pids()), heapUsed: report?.memory.heapUsed };
}

/**
 * Holds `count` paced streams open through a fresh target. Baseline and "after" are taken after a
 * full GC (Node targets), "after" once the upstream's idle keep-alive sockets have closed too;
 * the RSS the process shows without that help is reported beside it. Node targets also report
 * the event-loop delay over the open period and the heap with all streams open.
 */
export async function slowScenario(target, upstream, { count, intervalMs, settleMs, quietMs, socketWaitMs }) {
  await sleep(quietMs);
  const pids = target.pids();
  const before = await settledRss(target);
  await fetchReset(upstream);
  let rssPeak = before.rss;
  let rssAllOpen;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssBytes(pids))), 100);
  await monitor(target, 'start');
  const rampMs = Math.min(1000, count);
  const streamMs = STREAM_EVENT_COUNT * intervalMs;
  let reportTimer;
  let loop;
  const result = await slowStreams(target, {
    count,
    intervalMs,
    rampMs,
    path: CHAT_PATH,
    onAllOpen: () => {
      rssAllOpen = rssBytes(pids);
      // Halfway through the time all streams are open: the report then holds the heap with all open.
      reportTimer = setTimeout(() => void monitor(target, 'report').then((report) => (loop = report)), Math.max(0, (streamMs - rampMs) / 2));
    },
  });
  clearInterval(sampler);
  if (reportTimer === undefined) loop = await monitor(target, 'report');
  for (let waited = 0; waited < 5000 && loop === undefined && target.loopReport; waited += 50) await sleep(50);
  const stats = await upstreamStats(upstream);
  // Idle upstream sockets close after the fake upstream's keep-alive timeout; then memory is compared.
  await sleep(socketWaitMs);
  const endedAt = Date.now();
  const limit = before.rss * (1 + BASELINE_TOLERANCE);
  let rssNatural = rssBytes(pids);
  while (rssNatural > limit && Date.now() - endedAt < settleMs) {
    await sleep(500);
    rssNatural = rssBytes(pids);
  }
  const after = await settledRss(target);
  return {
    count,
    intervalMs,
    ...result,
    upstreamMaxOpen: stats.maxOpenStreams,
    rssBefore: before.rss,
    heapBefore: before.heapUsed,
    rssAllOpen,
    rssPeak,
    rssNatural,
    rssAfter: after.rss,
    heapAfter: after.heapUsed,
    backToBaseline: after.rss <= limit,
    loop,
  };
}

async function fetchReset(upstream) {
  const { request } = await import('undici');
  const { body } = await request(`http://127.0.0.1:${upstream.port}/__bench/reset-open-streams`);
  await body.dump();
}

