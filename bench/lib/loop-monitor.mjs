// Preloaded (`node --import`) into every Node target; idle until the bench asks. The bench writes
// a command to BENCH_LOOP_REPORT.cmd and sends SIGUSR2: "start" begins an event-loop delay
// histogram, "report" writes it (and memory) to BENCH_LOOP_REPORT, "gc" runs a full garbage
// collection first and writes memory only. Nothing runs in between, so it costs nothing under load.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Timer period of the histogram; each sample is the period plus the delay, so it is subtracted. */
const RESOLUTION_MS = 10;
const reportFile = process.env.BENCH_LOOP_REPORT;

function memory() {
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, external, arrayBuffers };
}

function write(report) {
  writeFileSync(`${reportFile}.tmp`, JSON.stringify(report));
  renameSync(`${reportFile}.tmp`, reportFile);
}

if (reportFile) {
  let histogram;
  process.on('SIGUSR2', () => {
    let command = '';
    try {
      command = readFileSync(`${reportFile}.cmd`, 'utf8').trim();
    } catch {
      return;
    }
    if (command === 'start') {
      histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      histogram.enable();
    } else if (command === 'report' && histogram) {
      histogram.disable();
      const ms = (ns) => Math.max(0, Math.round(ns / 1000 - RESOLUTION_MS * 1000) / 1000);
      write({ eventLoopDelayMs: { p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max), samples: histogram.count }, memory: memory() });
      histogram = undefined;
    } else if (command === 'gc') {
      // The documented way to reach gc() in a running process: expose it, then read it from a new context.
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc');
      gc();
      gc();
      write({ memory: memory() });
    }
  });
}
