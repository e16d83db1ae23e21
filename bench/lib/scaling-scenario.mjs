// The cost per request as the configuration grows: gateways with more app keys and more upstreams,
// side by side, measured in alternation on JSON at 64 connections.
import { checkTarget, upstreamStats } from './check.mjs';
import { fmt, measure, RETRY_SHARE, rotate, say } from './measure.mjs';
import { median } from './stats.mjs';
import { gatewayTarget } from './targets.mjs';

/** Gateways with more app keys and more upstreams, measured in alternation on JSON at 64 connections. */
export async function scalingScenario(upstream, flags, dir, plan) {
  const configs = [
    ...flags.keys.map((keys) => ({ group: 'keys', label: `${keys.toLocaleString('en-US')} app keys`, keys, upstreams: 0 })),
    ...flags.upstreams.map((upstreams) => ({ group: 'upstreams', label: `${upstreams} upstream${upstreams === 1 ? '' : 's'} (${flags.keys[0]} keys)`, keys: flags.keys[0], upstreams })),
  ];
  say(`scaling: starting ${configs.length} gateways (${configs.map((config) => config.label).join(', ')})`);
  await Promise.all(
    configs.map(async (config) => {
      try {
        config.target = await gatewayTarget(upstream, { cpu: plan.server, dir, name: `gateway-${config.group}-${config.group === 'keys' ? config.keys : config.upstreams}`, keys: config.keys, upstreams: config.upstreams });
      } catch (error) {
        const line = error.message.split('\n').find((text) => text.includes('error')) ?? error.message.split('\n')[0];
        config.state = config.upstreams > 0 ? `not available: the gateway refused the config (${line.trim().slice(0, 200)})` : `failed to start: ${line}`;
      }
    }),
  );
  const failures = [];
  for (const config of configs) {
    if (!config.target) continue;
    const before = await upstreamStats(upstream);
    const problems = await checkTarget(config.target, upstream);
    const after = await upstreamStats(upstream);
    if (problems.length === 0) {
      config.state = 'ok';
      continue;
    }
    const unrouted = (after.byKey['sk-upstream-seed-not-routed'] ?? 0) - (before.byKey['sk-upstream-seed-not-routed'] ?? 0);
    if (config.upstreams > 0 && unrouted > 0) config.state = 'not available: `upstreams` is accepted by the config, but requests still go to `base_url` (the pool is not wired into the gateway yet)';
    else if (config.upstreams > 0) config.state = `not available: ${problems.join('; ')}`;
    else {
      config.state = `failed: ${problems.join('; ')}`;
      failures.push(`${config.label}: ${problems.join('; ')}`);
    }
    await config.target.stop();
    config.target = undefined;
  }
  for (const config of configs) say(`scaling: ${config.label}: ${config.state}`);
  const ready = configs.filter((config) => config.target);
  const results = new Map(ready.map((config) => [config, []]));
  // A fresh process is still compiling its hot paths: warm each one up before the first round.
  if (!flags.smoke) for (const config of ready) await measure(config.target, 'json-c64', upstream, { durationMs: 4 * flags.warmupMs, warmupMs: 0 });
  // More, shorter rounds than the main scenarios: the configurations are separate processes, so
  // the median over more windows is what keeps other load on the machine out of the comparison.
  const timing = { durationMs: flags.scalingDurationMs, warmupMs: Math.min(flags.warmupMs, 500) };
  const noise = { maxOtherPct: flags.maxOtherLoad, retriesLeft: Math.floor(ready.length * flags.scalingRounds * RETRY_SHARE) };
  for (let round = 0; round < flags.scalingRounds; round++) {
    for (const config of rotate(ready, round)) {
      const result = await measure(config.target, 'json-c64', upstream, timing, { noise });
      results.get(config).push(result);
      if (result.failed > 0) failures.push(`scaling ${config.label}: ${result.failed} failed (${result.firstError})`);
      say(`scaling round ${round + 1}/${flags.scalingRounds} ${config.label}: ${fmt(result.rps)} req/s, ${fmt(result.cpuUsPerReq, 1)} µs CPU/req (other load ${fmt(result.otherPct)} %${result.retries > 0 ? `, quietest of ${result.retries + 1}` : ''})`);
    }
  }
  await Promise.all(ready.map((config) => config.target.stop()));
  const rows = (group) =>
    configs
      .filter((config) => config.group === group)
      .map((config) => {
        const rounds = results.get(config) ?? [];
        const cpu = rounds.map((r) => r.cpuUsPerReq).filter((value) => value !== undefined);
        return {
          label: config.label,
          keys: config.keys,
          upstreams: config.upstreams,
          state: config.state,
          rounds,
          rps: median(rounds.map((r) => r.rps)),
          cpuUsPerReq: median(cpu),
          cpuMin: cpu.length > 0 ? Math.min(...cpu) : undefined,
          cpuMax: cpu.length > 0 ? Math.max(...cpu) : undefined,
          otherPct: median(rounds.map((r) => r.otherPct)),
        };
      });
  return { scaling: { keys: rows('keys'), upstreams: rows('upstreams') }, failures };
}

