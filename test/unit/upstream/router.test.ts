import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { UpstreamConfig } from '../../../src/config/index.js';
import type { UpstreamRequest } from '../../../src/upstream/client.js';
import { PoolMember } from '../../../src/upstream/pool-member.js';
import { Router } from '../../../src/upstream/router.js';

// Members own an undici Pool each; nothing here sends, so they never connect.
const CIRCUIT = { errorRatio: 0.5, minRequests: 2, windowMs: 10_000, openMs: 30_000 };
const members: PoolMember[] = [];
after(async () => {
  await Promise.all(members.map((member) => member.connection.close()));
});

function member(name: string, overrides: Partial<UpstreamConfig> = {}): PoolMember {
  const config: UpstreamConfig = { name, type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKeys: [`sk-${name}-router-key-0000`], weight: 1, models: ['*'], headers: {}, apiVersion: undefined, deployments: {}, proxy: undefined, includeUsage: true, websockets: true, ...overrides };
  const built = new PoolMember(config, CIRCUIT, 1_000);
  members.push(built);
  return built;
}

const NOW = 1_000_000;
const request = (model: string | undefined, overrides: Partial<UpstreamRequest> = {}): UpstreamRequest => ({ model, method: 'POST', path: '/chat/completions', headers: {}, body: null, signal: new AbortController().signal, ...overrides });
const routerOf = (list: PoolMember[], random: () => number = () => 0): Router => new Router(list, () => NOW, random);

function openCircuit(target: PoolMember): void {
  for (let i = 0; i < CIRCUIT.minRequests; i++) target.circuit.record('failure', false, NOW);
  assert.ok(!target.circuit.canPass(NOW));
}

describe('router: candidates', () => {
  it('computes the candidates for a model once and reuses them', () => {
    const router = routerOf([member('chat', { models: ['gpt-*'] }), member('emb', { models: ['text-embedding-*'] })]);
    const first = router.candidatesFor('gpt-4o');
    assert.equal(router.candidatesFor('gpt-4o'), first);
    assert.deepEqual(first.members.map((candidate) => candidate.name), ['chat']);
    assert.deepEqual(router.candidatesFor('claude').members, []);
  });

  it('knows per model whether every candidate accepts include_usage', () => {
    const router = routerOf([member('a', { models: ['gpt-*'] }), member('b', { models: ['gpt-4o'], includeUsage: false })]);
    assert.equal(router.candidatesFor('gpt-4o-mini').includeUsage, true);
    assert.equal(router.candidatesFor('gpt-4o').includeUsage, false);
    assert.equal(router.candidatesFor(undefined).includeUsage, false);
  });

  it('refuses a model nobody serves, and a model-less path no candidate takes without one', () => {
    const azure = member('azure', { type: 'azure', apiKeys: ['azure-key-0123456789abcdef'], apiVersion: '2024-10-21', deployments: { 'gpt-4o': 'dep' } });
    const router = routerOf([azure]);
    assert.throws(() => router.route(request('gpt-4o-mini')), { code: 'model_not_found', message: 'The model `gpt-4o-mini` is not served by this gateway.' });
    assert.throws(() => router.route(request(undefined, { path: '/embeddings?x=1' })), { code: 'model_not_found', message: 'No upstream can serve /embeddings without knowing the model; send the "model" field.' });
    assert.equal(router.route(request(undefined, { path: '/files?limit=1' })).pathname, '/files');
  });

  it('pins a request to the upstream and key its affinity names, when that upstream serves the model', () => {
    const a = member('a');
    const b = member('b', { apiKeys: ['sk-b-router-key-0000', 'sk-b-router-key-0001'], models: ['gpt-*'] });
    const router = routerOf([a, b]);
    const pinned = router.route(request('gpt-4o', { affinity: { upstream: 'b', upstreamKey: b.keys[1]!.fingerprint } }));
    assert.deepEqual([pinned.candidates.members, pinned.pinnedKey], [[b], b.keys[1]]);
    assert.equal(router.route(request('gpt-4o', { affinity: { upstream: 'b', upstreamKey: null } })).pinnedKey, undefined);
    assert.deepEqual(router.route(request('o3', { affinity: { upstream: 'b', upstreamKey: null } })).candidates.members, [a], 'b does not serve o3');
    assert.deepEqual(router.route(request('o3', { affinity: { upstream: 'gone', upstreamKey: null } })).candidates.members, [a]);
  });
});

describe('router: choosing', () => {
  it('splits choices by weight (1:3 within 1.5 points over 20,000)', () => {
    const light = member('light', { weight: 1 });
    const heavy = member('heavy', { weight: 3 });
    const router = routerOf([light, heavy], Math.random);
    let lightCount = 0;
    for (let i = 0; i < 20_000; i++) if (router.choose(router.route(request('gpt-4o')))!.member === light) lightCount += 1;
    assert.ok(Math.abs(lightCount / 20_000 - 0.25) < 0.015, `${lightCount} of 20000`);
  });

  it('avoids an upstream that failed this request, and goes back to it only when nothing else is left', () => {
    const a = member('a');
    const b = member('b');
    const router = routerOf([a, b]);
    const route = router.route(request('gpt-4o'));
    assert.equal(router.choose(route)!.member, a);
    route.tried(a.keys[0]!, true);
    assert.equal(router.choose(route)!.member, b);
    route.tried(b.keys[0]!, true);
    assert.equal(router.choose(route)!.member, a);
  });

  it('after a key fault, takes another key of the same upstream; the tried key only when it is the last', () => {
    const a = member('a', { apiKeys: ['sk-a-router-key-0000', 'sk-a-router-key-0001'] });
    const router = routerOf([a]);
    const route = router.route(request('gpt-4o'));
    const first = router.choose(route)!;
    route.tried(first, false);
    const second = router.choose(route)!;
    assert.notEqual(second, first);
    route.tried(second, false);
    assert.ok(router.choose(route) !== undefined, 'a tried key is reused rather than nothing');
  });

  it('skips resting and disabled keys, and upstreams with none left', () => {
    const a = member('a', { apiKeys: ['sk-a-router-key-0000', 'sk-a-router-key-0001'] });
    const b = member('b');
    const router = routerOf([a, b]);
    a.keys[0]!.health.coolFor(NOW, 5_000);
    assert.equal(router.choose(router.route(request('gpt-4o'))), a.keys[1]);
    a.keys[1]!.health.disable('HTTP 401', NOW);
    assert.equal(router.choose(router.route(request('gpt-4o'))), b.keys[0]);
    b.keys[0]!.health.disable('HTTP 401', NOW);
    const route = router.route(request('gpt-4o'));
    assert.equal(router.choose(route), undefined);
    assert.equal(router.availableAt(route), NOW + 5_000);
    assert.equal(router.unavailable(route).code, 'upstream_unreachable');
  });

  it('passes an open circuit only when every candidate has one (panic mode)', () => {
    const a = member('a');
    const b = member('b');
    const router = routerOf([a, b]);
    openCircuit(a);
    assert.equal(router.choose(router.route(request('gpt-4o')))!.member, b);
    openCircuit(b);
    assert.equal(router.choose(router.route(request('gpt-4o')))!.member, a);
  });
});
