// One bench session: the fake upstream and every target started side by side, each checked for
// correctness, then measured in alternating rounds; slow streams and configuration growth after.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { checkTarget, upstreamStats } from './check.mjs';
import { profileMarkdown } from './cpu-profile.mjs';
import { JSON_BYTES, STREAM_EVENT_COUNT, UPSTREAM_KEEPALIVE_MS } from './fake-upstream.mjs';
import { probe } from './load.mjs';
import { fmt, measure, RETRY_SHARE, rotate, say } from './measure.mjs';
import { cpuPlan, pinSelf, rssBytes, startProcess, stopAllProcesses } from './proc.mjs';
import { compactMarkdown, evaluate, markdown, SCENARIOS, summarise } from './report.mjs';
import { gatewayEvidence, gitDescription, otherLoad, replaceBlock, requireFromBench, requireFromRoot, versionOf } from './run-info.mjs';
import { redisMarkdown, redisScenario } from './redis-scenario.mjs';
import { scalingScenario } from './scaling-scenario.mjs';
import { slowScenario } from './slow-scenario.mjs';
import { CHAT_PATH, directTarget, gatewayTarget, nginxTarget, portkeyTarget, relayTarget } from './targets.mjs';

const BENCH = fileURLToPath(new URL('../', import.meta.url));
const ROOT = join(BENCH, '..');

/** Runs the session; whatever happens, every server it started is stopped before it returns. */
export async function runBench(flags, dir) {
  const onSignal = () => {
    void stopAllProcesses().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await session(flags, dir);
  } finally {
    await stopAllProcesses();
  }
}

async function session(flags, dir) {
  const plan = cpuPlan();
  pinSelf(plan.load);
  const startedAt = Date.now();
  const failures = [];
  const notes = [];
  say(`${flags.smoke ? 'smoke run' : `${flags.rounds} rounds × ${flags.durationMs / 1000} s (+${flags.warmupMs / 1000} s warm-up)`}; ${plan.note}`);
  if (!plan.pinned) notes.push(`CPU pinning off (${plan.note}): numbers are noisier.`);
  const placement = { shared: plan.pinned && !flags.c1Split, load: plan.load, server: plan.server };

  const upstreamServer = startProcess('fake-upstream', process.execPath, [join(BENCH, 'lib', 'fake-upstream.mjs')], { cpu: plan.load });
  const { port } = await upstreamServer.readyLine();
  const upstream = { port, server: upstreamServer };
  if (flags.redisUrl !== undefined) return redisSession(flags, dir, plan, upstream);

  const targets = [directTarget(upstream)];
  const starters = { relay: relayTarget, gateway: gatewayTarget, nginx: nginxTarget, portkey: portkeyTarget };
  const cpuProfDir = join(dir, 'cpu-prof');
  if (flags.cpuProf) mkdirSync(cpuProfDir, { recursive: true });
  for (const name of flags.targets.filter((item) => item !== 'direct')) {
    try {
      const options = { cpu: plan.server, dir, cpuProfileDir: flags.cpuProf && (name === 'gateway' || name === 'relay') ? cpuProfDir : undefined };
      const target = await starters[name](upstream, options);
      if (target.skipped) {
        say(target.skipped);
        notes.push(target.skipped);
        continue;
      }
      targets.push(target);
    } catch (error) {
      failures.push(`${name} did not start: ${error.message}`);
    }
  }
  if (flags.cpuProf) notes.push('The gateway and the relay ran with the V8 CPU profiler on during each measured window: their numbers include its overhead.');

  for (const target of targets) {
    const problems = await checkTarget(target, upstream);
    if (problems.length > 0) failures.push(...problems.map((problem) => `${target.name}: ${problem}`));
    say(`check ${target.name}: ${problems.length === 0 ? `ok (200, body intact, upstream saw ${target.upstreamKey}${target.clientKey === target.upstreamKey ? '' : ` not ${target.clientKey}`})` : problems.join('; ')}`);
  }
  const gateway = targets.find((target) => target.name === 'gateway');
  if (gateway) {
    // The usage writer flushes every second: wait for the two rows.
    let evidence = gatewayEvidence(gateway);
    for (let waited = 0; waited < 3000 && (evidence.usageRows < 2 || evidence.logLines < 2); waited += 100) {
      await sleep(100);
      evidence = gatewayEvidence(gateway);
    }
    if (evidence.usageRows < 2 || evidence.logLines < 2) failures.push(`gateway: not in production shape: ${evidence.usageRows} usage rows, ${evidence.logLines} request log lines after 2 requests`);
    else say(`check gateway production shape: ${evidence.usageRows} usage rows in SQLite, ${evidence.logLines} request log lines in ${gateway.logFile}`);
  }
  if (failures.length > 0) {
    for (const failure of failures) say(`FAIL ${failure}`);
    return 1;
  }

  const scenarios = flags.scenarios.filter((name) => SCENARIOS[name]);
  const runs = Object.fromEntries(scenarios.map((name) => [name, Object.fromEntries(targets.map((target) => [target.name, []]))]));
  if (scenarios.length > 0 && !flags.smoke) {
    // JIT warm-up: every target sees both request shapes before anything is measured.
    say('warming up every target');
    const heavy = scenarios.filter((name) => SCENARIOS[name].connections > 1);
    for (const target of targets) for (const scenario of heavy.length > 0 ? heavy : scenarios) await measure(target, scenario, upstream, { durationMs: 2 * flags.warmupMs, warmupMs: 0 }, { placement });
  }
  const noise = { maxOtherPct: flags.maxOtherLoad, retriesLeft: Math.floor(flags.rounds * scenarios.length * targets.length * RETRY_SHARE) };
  for (let round = 0; round < flags.rounds && scenarios.length > 0; round++) {
    for (const scenario of scenarios) {
      for (const target of rotate(targets, round)) {
        const result = await measure(target, scenario, upstream, flags, { placement, label: `${scenario}-round${round + 1}`, noise });
        runs[scenario][target.name].push(result);
        if (result.failed > 0) failures.push(`${target.name} ${scenario} round ${round + 1}: ${result.failed} failed requests (${result.firstError})`);
        if (result.ok === 0) failures.push(`${target.name} ${scenario} round ${round + 1}: no successful request`);
        const latency = SCENARIOS[scenario].stream ? `first byte p50 ${fmt(result.ttfbP50Us)} µs, [DONE] p50 ${fmt(result.p50Us)} µs` : `p50 ${fmt(result.p50Us)} µs, p99 ${fmt(result.p99Us)} µs`;
        say(`round ${round + 1}/${flags.rounds} ${scenario} ${target.name}: ${fmt(result.rps)} req/s, ${latency}, ${fmt(result.cpuUsPerReq, 1)} µs CPU/req (${fmt(result.cpuPct)} % CPU; other load ${fmt(result.otherPct)} %${result.retries > 0 ? `, quietest of ${result.retries + 1}` : ''})`);
      }
    }
  }

  // Memory after the throughput rounds: V8 keeps the heap it grew under load.
  const rssAfterLoad = Object.fromEntries(targets.filter((target) => target.name !== 'direct').map((target) => [target.name, rssBytes(target.pids())]));
  let evidence;
  if (gateway) {
    // Every request the gateway forwarded must have a usage row and a log line (the writer flushes on shutdown).
    await gateway.stop();
    const forwarded = (await upstreamStats(upstream)).byKey[gateway.upstreamKey] ?? 0;
    evidence = { forwarded, ...gatewayEvidence(gateway) };
    say(`gateway: forwarded ${evidence.forwarded} requests, metered ${evidence.usageRows}, logged ${evidence.logLines}`);
    if (evidence.usageRows !== evidence.forwarded || evidence.logLines !== evidence.forwarded) failures.push(`gateway: forwarded ${evidence.forwarded} requests but metered ${evidence.usageRows} and logged ${evidence.logLines}`);
  }
  for (const target of targets) if (target !== gateway) await target.stop();

  // Slow streams on fresh processes: the memory of 1,000 open streams, not of the heap the
  // throughput rounds grew. Each is warmed up with a few requests first (JIT, tokenizer tables).
  const slow = {};
  if (flags.scenarios.includes('slow')) {
    for (const name of flags.targets.filter((item) => item !== 'direct' && targets.some((target) => target.name === item))) {
      const target = await starters[name](upstream, { cpu: plan.server, dir, name: `${name}-slow` });
      target.name = name;
      for (const stream of [false, true]) await probe(target, { stream, connections: 4, durationMs: flags.smoke ? 100 : 1000, path: CHAT_PATH });
      say(`slow streams: ${flags.streams} through a fresh ${name}`);
      const result = await slowScenario(target, upstream, { count: flags.streams, intervalMs: flags.streamIntervalMs, settleMs: flags.smoke ? 0 : 15_000, quietMs: flags.smoke ? 100 : 2000, socketWaitMs: flags.smoke ? 0 : UPSTREAM_KEEPALIVE_MS + 1000 });
      result.rssAfterLoad = rssAfterLoad[name];
      slow[name] = result;
      await target.stop();
      if (result.ok !== result.count) failures.push(`${name} slow streams: ${result.ok} of ${result.count} completed (${result.firstError})`);
      say(`slow streams ${name}: ${result.ok}/${result.count} completed, ${result.upstreamMaxOpen} open at once upstream, RSS ${fmt(result.rssBefore / 1048576, 1)} → peak ${fmt(result.rssPeak / 1048576, 1)} → ${fmt(result.rssNatural / 1048576, 1)} (${fmt(result.rssAfter / 1048576, 1)} after GC) MB${result.loop ? `, event-loop delay p99 ${result.loop.eventLoopDelayMs.p99} ms` : ''}`);
    }
  }

  let scaling;
  if (flags.scenarios.includes('scaling') && flags.targets.includes('gateway')) {
    const outcome = await scalingScenario(upstream, flags, dir, plan);
    scaling = outcome.scaling;
    failures.push(...outcome.failures);
  }
  await upstreamServer.stop();

  const profiles = Object.values(runs).flatMap((byTarget) => Object.values(byTarget).flatMap((rounds) => rounds.map((round) => round.profile).filter(Boolean)));
  for (const profile of profiles) process.stdout.write(`\n${profileMarkdown(profile, profile.label)}\n`);

  const summary = summarise(runs);
  const evaluation = evaluate(summary, slow, scaling);
  const nginx = targets.find((target) => target.name === 'nginx');
  const portkey = targets.find((target) => target.name === 'portkey');
  const cpus = os.cpus();
  const meta = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    machine: `${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}`,
    node: process.versions.node,
    versions: `gateway ${gitDescription()}; undici ${versionOf(requireFromRoot, 'undici')}, fastify ${versionOf(requireFromRoot, 'fastify')}; ${nginx ? nginx.version : 'nginx not run'}; ${portkey ? `@portkey-ai/gateway ${portkey.version}` : 'Portkey not run'}; autocannon ${versionOf(requireFromBench, 'autocannon')}`,
    method: `${plan.note}${placement.shared ? ' (at 1 connection the server joins that CPU: on this VM a wake-up of the idle other CPU adds ~0.25 ms p50 and milliseconds at p99 per hop, for nginx as much as for Node; `--c1-split` keeps them apart)' : ''}; targets alternate within each of ${flags.rounds} round(s), ${flags.durationMs / 1000} s measured after ${flags.warmupMs / 1000} s of warm-up, medians shown. Server CPU = utime+stime of the server's processes (/proc/PID/stat) ÷ successful requests. Fake upstream: ${JSON_BYTES}-byte chat.completion, or ${STREAM_EVENT_COUNT - 2} chunk events + usage + [DONE] with no delays. Gateway: 1 app key with rpm/tpm/budget limits, SQLite metering, info log to a file. nginx: 1 worker, access_log off.`,
    durationS: Math.round((Date.now() - startedAt) / 1000),
    otherLoad: otherLoad(runs),
    maxOtherLoadPct: flags.maxOtherLoad,
  };
  const text = markdown({ meta, summary, slow, scaling, targets: targets.map((target) => target.name), evaluation, notes });
  process.stdout.write(`\n${text}\n`);

  mkdirSync(join(BENCH, 'results'), { recursive: true });
  // Only a complete run replaces the published tables; a partial one (some targets or scenarios) is printed and kept aside.
  const complete = !flags.smoke && !flags.cpuProf && flags.partial === false;
  const rawFile = join(BENCH, 'results', flags.smoke ? 'smoke.raw.json' : flags.cpuProf ? 'profile.raw.json' : complete ? 'latest.raw.json' : 'partial.raw.json');
  writeFileSync(rawFile, JSON.stringify({ meta, flags, summary, evaluation, runs, slow, scaling, gateway: evidence, failures }, null, 1));
  say(`raw results: ${rawFile}`);
  if (complete) {
    replaceBlock(join(BENCH, 'RESULTS.md'), '<!-- bench:begin -->', '<!-- bench:end -->', text);
    say('table written to bench/RESULTS.md');
    if (flags.readme) {
      replaceBlock(join(ROOT, 'README.md'), '<!-- bench:begin -->', '<!-- bench:end -->', compactMarkdown({ meta, summary, targets: targets.map((target) => target.name), evaluation }));
      say('table written to README.md');
    }
    const missed = evaluation.filter((row) => row.met === false);
    say(missed.length === 0 ? 'every measured target met' : `targets missed: ${missed.map((row) => row.name).join('; ')}`);
  } else if (!flags.smoke) say('partial run: bench/RESULTS.md and README.md left as they were');
  say(`done in ${meta.durationS} s`);
  for (const failure of failures) say(`FAIL ${failure}`);
  return failures.length > 0 ? 1 : 0;
}

/** `--redis`: only the shared-limits comparison (redis-scenario.mjs); RESULTS.md is left alone. */
async function redisSession(flags, dir, plan, upstream) {
  say(`redis: ${flags.scalingRounds} rounds × ${flags.scalingDurationMs / 1000} s; ${plan.note}`);
  const { rows, failures } = await redisScenario(upstream, flags, dir, plan);
  await upstream.server.stop();
  if (rows) {
    const text = redisMarkdown(rows, { rounds: flags.scalingRounds, durationS: flags.scalingDurationMs / 1000 });
    process.stdout.write(`\n${text}\n\nRedis's CPU and commands are its whole server's during the shared gateway's windows: other clients of the same Redis add to them.\n`);
    mkdirSync(join(BENCH, 'results'), { recursive: true });
    const rawFile = join(BENCH, 'results', flags.smoke ? 'redis-smoke.raw.json' : 'redis.raw.json');
    writeFileSync(rawFile, JSON.stringify({ date: new Date().toISOString(), flags, rows, failures }, null, 1));
    say(`raw results: ${rawFile}`);
  }
  for (const failure of failures) say(`FAIL ${failure}`);
  return failures.length > 0 ? 1 : 0;
}
