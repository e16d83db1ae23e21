// The results as markdown: one table per scenario (medians over rounds), the slow-stream and
// configuration-size tables, and the acceptance targets as ratios from this one run.
import { STREAM_EVENT_COUNT as STREAM_EVENTS } from './fake-upstream.mjs';
import { medianOf } from './stats.mjs';

const fmt = (value, digits = 0) => (value === undefined || value === null || Number.isNaN(value) ? '–' : Number(value).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));
const mb = (bytes) => (bytes === undefined ? '–' : fmt(bytes / 1048576, 1));
const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);

export const SCENARIOS = {
  'json-c1': { title: 'JSON, 1 connection (µs probe)', stream: false, connections: 1, tool: 'probe' },
  'json-c64': { title: 'JSON, 64 connections (autocannon)', stream: false, connections: 64, tool: 'autocannon' },
  'sse-c1': { title: 'SSE, 1 connection (µs probe)', stream: true, connections: 1, tool: 'probe' },
  'sse-c64': { title: 'SSE, 64 connections (µs probe)', stream: true, connections: 64, tool: 'probe' },
};

/** Medians over rounds for every target and scenario. */
export function summarise(runs) {
  const summary = {};
  for (const [scenario, byTarget] of Object.entries(runs)) {
    summary[scenario] = {};
    for (const [target, rounds] of Object.entries(byTarget)) {
      const pick = (field) => medianOf(rounds, (round) => round[field]);
      summary[scenario][target] = {
        rounds: rounds.length,
        failed: rounds.reduce((sum, round) => sum + round.failed, 0),
        rps: pick('rps'),
        p50Us: pick('p50Us'),
        p99Us: pick('p99Us'),
        ttfbP50Us: pick('ttfbP50Us'),
        ttfbP99Us: pick('ttfbP99Us'),
        cpuUsPerReq: pick('cpuUsPerReq'),
        cpuPct: pick('cpuPct'),
        upstreamCpuUsPerReq: pick('upstreamCpuUsPerReq'),
      };
    }
  }
  return summary;
}

function scenarioTable(name, rows, targets) {
  const spec = SCENARIOS[name];
  const direct = rows.direct;
  const relay = rows.relay;
  const lines = [];
  if (spec.stream) {
    const single = spec.connections === 1;
    lines.push(`| target | streams/s | first byte p50 µs | p99 µs | [DONE] p50 µs | p99 µs |${single ? ' added first byte p50 µs |' : ''} server CPU µs/stream | server CPU % | × relay CPU |`);
    lines.push(`|---|--:|--:|--:|--:|--:|${single ? '--:|' : ''}--:|--:|--:|`);
    for (const target of targets) {
      const row = rows[target];
      if (!row) continue;
      const added = single ? ` ${fmt(target === 'direct' || !direct ? undefined : row.ttfbP50Us - direct.ttfbP50Us)} |` : '';
      lines.push(`| ${target} | ${fmt(row.rps)} | ${fmt(row.ttfbP50Us)} | ${fmt(row.ttfbP99Us)} | ${fmt(row.p50Us)} | ${fmt(row.p99Us)} |${added} ${fmt(row.cpuUsPerReq, 1)} | ${fmt(row.cpuPct)} | ${target === 'direct' ? '–' : fmt(ratio(row.cpuUsPerReq, relay?.cpuUsPerReq), 2)} |`);
    }
  } else {
    // Under load latency is queueing, not added work: "added" columns only at one connection.
    const single = spec.connections === 1;
    const unit = spec.tool === 'autocannon' ? 'ms' : 'µs';
    const scale = spec.tool === 'autocannon' ? 1000 : 1;
    lines.push(`| target | req/s | p50 ${unit} | p99 ${unit} |${single ? ' added p50 µs | added p99 µs |' : ''} server CPU µs/req | server CPU % | × relay CPU |`);
    lines.push(`|---|--:|--:|--:|${single ? '--:|--:|' : ''}--:|--:|--:|`);
    for (const target of targets) {
      const row = rows[target];
      if (!row) continue;
      const addedP50 = target === 'direct' || !direct ? undefined : row.p50Us - direct.p50Us;
      const addedP99 = target === 'direct' || !direct ? undefined : row.p99Us - direct.p99Us;
      const added = single ? ` ${fmt(addedP50)} | ${fmt(addedP99)} |` : '';
      lines.push(`| ${target} | ${fmt(row.rps)} | ${fmt(row.p50Us / scale, scale === 1 ? 0 : 1)} | ${fmt(row.p99Us / scale, scale === 1 ? 0 : 1)} |${added} ${fmt(row.cpuUsPerReq, 1)} | ${fmt(row.cpuPct)} | ${target === 'direct' ? '–' : fmt(ratio(row.cpuUsPerReq, relay?.cpuUsPerReq), 2)} |`);
    }
  }
  return `### ${spec.title}\n\n${lines.join('\n')}\n`;
}

function slowTable(slow) {
  const lines = [
    '| target | streams completed | open at once (upstream) | RSS before MB | RSS with all open MB | RSS peak MB | RSS after, as left MB | RSS after, sockets closed + GC MB | back to baseline | heap before / with all open / after MB | event-loop delay p50 / p99 / max ms | RSS after the throughput rounds MB |',
    '|---|--:|--:|--:|--:|--:|--:|--:|---|---|---|--:|',
  ];
  for (const [target, row] of Object.entries(slow)) {
    const loop = row.loop?.eventLoopDelayMs;
    const heap = row.heapBefore === undefined ? '–' : `${mb(row.heapBefore)} / ${row.loop ? mb(row.loop.memory.heapUsed) : '–'} / ${mb(row.heapAfter)}`;
    lines.push(
      `| ${target} | ${fmt(row.ok)} / ${fmt(row.count)} | ${fmt(row.upstreamMaxOpen)} | ${mb(row.rssBefore)} | ${mb(row.rssAllOpen)} | ${mb(row.rssPeak)} | ${mb(row.rssNatural)} | ${mb(row.rssAfter)} | ${row.backToBaseline ? 'yes' : 'no'} | ${heap} | ${loop ? `${fmt(loop.p50, 1)} / ${fmt(loop.p99, 1)} / ${fmt(loop.max, 1)}` : '–'} | ${mb(row.rssAfterLoad)} |`,
    );
  }
  return lines.join('\n');
}

function scalingTable(scaling) {
  const lines = ['| configuration | req/s | server CPU µs/req (median) | min – max over rounds | vs first | other load % | state |', '|---|--:|--:|--:|--:|--:|---|'];
  for (const group of ['keys', 'upstreams']) {
    const rows = scaling[group] ?? [];
    const base = rows.find((row) => row.cpuUsPerReq !== undefined)?.cpuUsPerReq;
    for (const row of rows) {
      const spread = row.cpuMin === undefined ? '–' : `${fmt(row.cpuMin)} – ${fmt(row.cpuMax)}`;
      lines.push(`| ${row.label} | ${fmt(row.rps)} | ${fmt(row.cpuUsPerReq, 1)} | ${spread} | ${row.cpuUsPerReq === undefined ? '–' : `${fmt(ratio(row.cpuUsPerReq, base), 2)}×`} | ${fmt(row.otherPct)} | ${row.state} |`);
    }
  }
  return lines.join('\n');
}

/** Each acceptance target: the bar, the number from this run, met or not (undefined: not measured). */
export function evaluate(summary, slow, scaling) {
  const cpu = (scenario, target) => summary[scenario]?.[target]?.cpuUsPerReq;
  const get = (scenario, target, field) => summary[scenario]?.[target]?.[field];
  const out = [];
  const add = (name, bar, value, met, shown) => out.push({ name, bar, value, met, shown });
  const check = (value, limit) => (value === undefined ? undefined : value <= limit);

  for (const [scenario, label] of [['json-c64', 'JSON'], ['sse-c64', 'SSE']]) {
    const r = ratio(cpu(scenario, 'gateway'), cpu(scenario, 'relay'));
    add(`gateway CPU per request vs relay, ${label} (64 connections)`, '≤ 1.5×', r, check(r, 1.5), r === undefined ? '–' : `${fmt(r, 2)}× (${fmt(cpu(scenario, 'gateway'), 1)} vs ${fmt(cpu(scenario, 'relay'), 1)} µs)`);
  }
  for (const [scenario, label] of [['json-c64', 'JSON'], ['sse-c64', 'SSE']]) {
    const r = ratio(cpu(scenario, 'portkey'), cpu(scenario, 'gateway'));
    add(`gateway cheaper per request than Portkey, ${label} (64 connections)`, '≥ 10×', r, r === undefined ? undefined : r >= 10, r === undefined ? '–' : `${fmt(r, 1)}× (${fmt(cpu(scenario, 'portkey'), 1)} vs ${fmt(cpu(scenario, 'gateway'), 1)} µs)`);
  }
  const addedP50 = get('json-c1', 'gateway', 'p50Us') - get('json-c1', 'direct', 'p50Us');
  const addedP99 = get('json-c1', 'gateway', 'p99Us') - get('json-c1', 'direct', 'p99Us');
  const addedTtfb = get('sse-c1', 'gateway', 'ttfbP50Us') - get('sse-c1', 'direct', 'ttfbP50Us');
  const num = (value) => (Number.isFinite(value) ? value : undefined);
  add('added latency at 1 connection, p50 (JSON)', '≤ 250 µs', num(addedP50), check(num(addedP50), 250), `${fmt(num(addedP50))} µs`);
  add('added latency at 1 connection, p99 (JSON)', '≤ 1,000 µs', num(addedP99), check(num(addedP99), 1000), `${fmt(num(addedP99))} µs`);
  add('added time to first streamed byte, p50 (1 connection)', '≤ 300 µs', num(addedTtfb), check(num(addedTtfb), 300), `${fmt(num(addedTtfb))} µs`);

  const gatewaySlow = slow?.gateway;
  const peak = gatewaySlow?.rssPeak;
  add(`gateway RSS with ${fmt(gatewaySlow?.count)} open streams`, '≤ 150 MB', peak, peak === undefined ? undefined : peak <= 150 * 1048576 && gatewaySlow.ok === gatewaySlow.count, peak === undefined ? '–' : `${mb(peak)} MB peak (${fmt(gatewaySlow.ok)} of ${fmt(gatewaySlow.count)} completed)`);
  add('gateway RSS back to baseline after the streams end (sockets closed, full GC)', `≤ baseline + ${BASELINE_TOLERANCE * 100} %`, gatewaySlow?.rssAfter, gatewaySlow ? gatewaySlow.backToBaseline : undefined, gatewaySlow ? `${mb(gatewaySlow.rssAfter)} MB after vs ${mb(gatewaySlow.rssBefore)} MB before (${mb(gatewaySlow.rssNatural)} MB as left)` : '–');

  for (const [group, label] of [['keys', 'app keys'], ['upstreams', 'upstreams']]) {
    const rows = (scaling?.[group] ?? []).filter((row) => row.cpuUsPerReq !== undefined);
    if (rows.length < 2) {
      const reason = (scaling?.[group] ?? []).find((row) => row.state !== 'ok')?.state;
      add(`CPU per request flat as ${label} grow`, 'within 10 %', undefined, undefined, reason ? `not available: ${reason}` : '–');
      continue;
    }
    // The bar compares the ends of the range; the steps between are shown in the table.
    const first = rows[0];
    const last = rows.at(-1);
    const change = last.cpuUsPerReq / first.cpuUsPerReq - 1;
    add(`CPU per request flat from ${first.label} to ${last.label}`, 'within 10 %', change, Math.abs(change) <= 0.1, `${change >= 0 ? '+' : ''}${fmt(change * 100, 1)} % (${fmt(first.cpuUsPerReq)} → ${fmt(last.cpuUsPerReq)} µs)`);
  }
  return out;
}

export const BASELINE_TOLERANCE = 0.1;

export function markdown({ meta, summary, slow, scaling, targets, evaluation, notes }) {
  const parts = [];
  parts.push(`Run of ${meta.date} on ${meta.machine}; Node ${meta.node}; ${meta.versions}.`);
  parts.push(`Method: ${meta.method}`);
  if (meta.otherLoad) {
    const { medianPct, maxPct, stealMedianPct } = meta.otherLoad;
    parts.push(`Other load on the machine during the measured windows (after re-measuring up to a quarter of the windows busier than ${fmt(meta.maxOtherLoadPct)} %): median ${fmt(medianPct)} %, worst ${fmt(maxPct)} % of one CPU (steal ${fmt(stealMedianPct, 1)} %).${maxPct > meta.maxOtherLoadPct ? ' Some windows still shared the machine with other work, which adds CPU time and latency to whatever ran then.' : ''}`);
  }
  if (notes.length > 0) parts.push(notes.map((note) => `- ${note}`).join('\n'));
  parts.push('### Targets\n\n| target | bar | this run | met |\n|---|---|---|---|\n' + evaluation.map((row) => `| ${row.name} | ${row.bar} | ${row.shown} | ${row.met === undefined ? 'n/a' : row.met ? 'yes' : '**no**'} |`).join('\n'));
  for (const name of Object.keys(SCENARIOS)) if (summary[name]) parts.push(scenarioTable(name, summary[name], targets));
  if (slow && Object.keys(slow).length > 0) {
    const first = Object.values(slow)[0];
    parts.push(`### ${fmt(first.count)} concurrent slow streams (${STREAM_EVENTS} events, one every ${fmt(first.intervalMs)} ms)\n\nEach target fresh (started, then warmed up with a few requests), so this is the memory of the open streams, not of the heap the throughput rounds grew (last column). "Before" is taken after a full GC (Node targets); "after, as left" is the RSS 6–20 s after the last stream ended with nothing done to the process; "after, sockets closed + GC" once the idle upstream keep-alive sockets have closed (the fake upstream closes idle ones after 5 s) and after a full GC. "Back to baseline": that last RSS within ${BASELINE_TOLERANCE * 100} % of "before". Event-loop delay: \`monitorEventLoopDelay\` over the open period, timer period subtracted.\n\n${slowTable(slow)}`);
  }
  if (scaling && (scaling.keys?.length || scaling.upstreams?.length)) parts.push(`### Cost as the configuration grows (gateway, JSON, 64 connections)\n\n${scalingTable(scaling)}`);
  return parts.join('\n\n') + '\n';
}

/** The short form for the README: the targets and one line per target. */
export function compactMarkdown({ meta, summary, targets, evaluation }) {
  const get = (scenario, target, field) => summary[scenario]?.[target]?.[field];
  const rows = targets.map((target) => {
    const added = (scenario, field) => (target === 'direct' ? undefined : get(scenario, target, field) - get(scenario, 'direct', field));
    return `| ${target} | ${fmt(get('json-c64', target, 'rps'))} | ${fmt(get('json-c64', target, 'cpuUsPerReq'))} | ${fmt(get('sse-c64', target, 'cpuUsPerReq'))} | ${fmt(get('json-c1', target, 'p50Us'))} / ${fmt(get('json-c1', target, 'p99Us'))} | ${fmt(added('json-c1', 'p50Us'))} | ${fmt(get('sse-c1', target, 'ttfbP50Us'))} | ${fmt(added('sse-c1', 'ttfbP50Us'))} |`;
  });
  const load = meta.otherLoad ? ` Other processes used a median ${fmt(meta.otherLoad.medianPct)} % of a CPU meanwhile.` : '';
  return [
    `Run of ${meta.date} on ${meta.machine}, Node ${meta.node} (medians; full tables and method in [bench/RESULTS.md](bench/RESULTS.md)).${load}`,
    ['| target | JSON req/s (64 conn.) | CPU µs/request, JSON | CPU µs/stream, SSE | JSON latency p50 / p99 µs (1 conn.) | added p50 µs | SSE first byte p50 µs (1 conn.) | added µs |', '|---|--:|--:|--:|--:|--:|--:|--:|', ...rows].join('\n'),
    ['| target | bar | this run | met |', '|---|---|---|---|', ...evaluation.map((row) => `| ${row.name} | ${row.bar} | ${row.shown} | ${row.met === undefined ? 'n/a' : row.met ? 'yes' : '**no**'} |`)].join('\n'),
  ].join('\n\n') + '\n';
}
