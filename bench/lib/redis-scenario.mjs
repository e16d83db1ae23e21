// `--redis`: the cost of limits shared through Redis (issue 15). Two gateways side by side, the
// same app key with rpm/tpm/USD-budget limits: one on its own (in-memory limits) and one with
// `redis_url` (one admission script and one settle script per request), measured in alternation
// on JSON at 64 connections. Redis's own CPU and commands per request come from INFO around the
// shared gateway's windows (a Redis other programs use adds their share: see the note printed).
import { randomBytes } from 'node:crypto';
import { checkTarget } from './check.mjs';
import { fmt, measure, rotate, say } from './measure.mjs';
import { median } from './stats.mjs';
import { requireFromRoot } from './run-info.mjs';
import { gatewayTarget } from './targets.mjs';

const ms = (us) => (us === undefined ? undefined : us / 1000);

async function redisInfo(client) {
  const text = await client.info();
  const field = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
  return { cpuMs: (field('used_cpu_user') + field('used_cpu_sys')) * 1000, commands: field('total_commands_processed') };
}

export async function redisScenario(upstream, flags, dir, plan) {
  const { Redis } = requireFromRoot('ioredis');
  const prefix = `openai-api-bench:${randomBytes(4).toString('hex')}:`;
  const client = new Redis(flags.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  const failures = [];
  const configs = [
    { label: 'one instance, in-memory limits', env: {} },
    { label: 'Redis-shared limits', env: { REDIS_URL: flags.redisUrl, REDIS_PREFIX: prefix }, shared: true },
  ];
  try {
    for (const config of configs) {
      config.target = await gatewayTarget(upstream, { cpu: plan.server, dir, name: config.shared ? 'gateway-redis' : 'gateway-local', env: config.env, note: config.shared ? ', limits shared through Redis' : '' });
      const problems = await checkTarget(config.target, upstream);
      if (problems.length > 0) failures.push(`${config.label}: ${problems.join('; ')}`);
      say(`redis: ${config.label}: ${problems.length === 0 ? 'ok' : problems.join('; ')}`);
    }
    if (failures.length > 0) return { failures };
    if (!flags.smoke) for (const config of configs) await measure(config.target, 'json-c64', upstream, { durationMs: 4 * flags.warmupMs, warmupMs: 0 });
    // No warm-up inside the windows: Redis's counters must cover the measured requests only.
    const timing = { durationMs: flags.scalingDurationMs, warmupMs: 0 };
    const results = new Map(configs.map((config) => [config, []]));
    for (let round = 0; round < flags.scalingRounds; round++) {
      for (const config of rotate(configs, round)) {
        const before = config.shared ? await redisInfo(client) : undefined;
        const result = await measure(config.target, 'json-c64', upstream, timing);
        if (before) {
          const after = await redisInfo(client);
          result.redisCpuUsPerReq = result.ok > 0 ? ((after.cpuMs - before.cpuMs) * 1000) / result.ok : undefined;
          result.redisCommandsPerReq = result.ok > 0 ? (after.commands - before.commands) / result.ok : undefined;
        }
        results.get(config).push(result);
        if (result.failed > 0) failures.push(`redis ${config.label}: ${result.failed} failed (${result.firstError})`);
        say(`redis round ${round + 1}/${flags.scalingRounds} ${config.label}: ${fmt(result.rps)} req/s, p50 ${fmt(ms(result.p50Us), 1)} ms, ${fmt(result.cpuUsPerReq, 1)} µs gateway CPU/req${before ? `, ${fmt(result.redisCpuUsPerReq, 1)} µs Redis CPU/req, ${fmt(result.redisCommandsPerReq, 2)} Redis commands/req` : ''} (other load ${fmt(result.otherPct)} %)`);
      }
    }
    const rows = configs.map((config) => {
      const rounds = results.get(config);
      const pick = (name) => median(rounds.map((r) => r[name]).filter((value) => value !== undefined));
      return { label: config.label, rps: pick('rps'), p50Us: pick('p50Us'), p99Us: pick('p99Us'), cpuUsPerReq: pick('cpuUsPerReq'), redisCpuUsPerReq: config.shared ? pick('redisCpuUsPerReq') : undefined, redisCommandsPerReq: config.shared ? pick('redisCommandsPerReq') : undefined, otherPct: pick('otherPct') };
    });
    return { rows, failures };
  } finally {
    for (const config of configs) await config.target?.stop();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await client.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    client.disconnect();
  }
}

export function redisMarkdown(rows, { rounds, durationS }) {
  const base = rows[0]?.cpuUsPerReq;
  const lines = [
    `### Limits shared through Redis (gateway, JSON, 64 connections; ${rounds} alternating rounds × ${durationS} s, medians)`,
    '',
    '| configuration | req/s | p50 ms | p99 ms | gateway CPU µs/req | × one instance | Redis CPU µs/req | Redis commands/req |',
    '|---|--:|--:|--:|--:|--:|--:|--:|',
    ...rows.map((row) => `| ${row.label} | ${fmt(row.rps)} | ${fmt(ms(row.p50Us), 1)} | ${fmt(ms(row.p99Us), 1)} | ${fmt(row.cpuUsPerReq, 1)} | ${base && row.cpuUsPerReq ? (row.cpuUsPerReq / base).toFixed(2) : '–'} | ${fmt(row.redisCpuUsPerReq, 1)} | ${fmt(row.redisCommandsPerReq, 2)} |`),
  ];
  return lines.join('\n');
}
