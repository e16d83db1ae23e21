import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { GatewayMetrics } from '../../../src/observability/metrics.js';

it('docs/metrics.md lists every openai_api_* metric the gateway exposes, with its type, and no other', async () => {
  const known = new Map<string, string>();
  const metrics = new GatewayMetrics({ knownModels: () => known, upstreams: () => [], activeRelays: () => 0, usageQueueDepth: () => 0, databaseUp: () => true, redisUp: () => true, appKeys: () => 0 });
  const exposed = new Map<string, string>();
  for (const [, name, type] of (await metrics.text()).matchAll(/^# TYPE (openai_api_\S+) (\S+)$/gm)) exposed.set(name!, type!);
  const doc = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
  const documented = new Map<string, string>();
  for (const [, name, type] of doc.matchAll(/^\| `(openai_api_[a-z_]+)` \| (counter|gauge|histogram) \|/gm)) documented.set(name!, type!);
  assert.deepEqual([...documented].sort(), [...exposed].sort());
});

it('the Grafana dashboard in docs/ queries only metrics the gateway exposes', async () => {
  const metrics = new GatewayMetrics({ knownModels: () => new Map(), upstreams: () => [], activeRelays: () => 0, usageQueueDepth: () => 0, databaseUp: () => true, appKeys: () => 0 });
  const text = await metrics.text();
  const exposed = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) => (type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!])));
  const dashboard = JSON.parse(readFileSync(new URL('../../../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
  const queried = new Set(dashboard.panels.flatMap((panel) => panel.targets ?? []).flatMap((target) => [...target.expr.matchAll(/\b((?:openai_api|process|nodejs)_[a-z0-9_]+)\b/g)].map((match) => match[1]!)));
  assert.ok(queried.size > 20);
  for (const name of queried) assert.ok(exposed.has(name), `${name} is exposed`);
});
