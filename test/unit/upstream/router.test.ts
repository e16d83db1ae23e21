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
  const config: UpstreamConfig = { name, type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKeys: [`sk-${name}-router-key-0000`], weight: 1, models: ['*'], headers: {}, apiVersion: undefined, deployments: {}, proxy: undefined, includeUsage: true, websockets: true, anthropicVersion: undefined, ...overrides };
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

describe('router: protocols', () => {
  const claude = (name: string, overrides: Partial<UpstreamConfig> = {}): PoolMember =>
    member(name, { type: 'anthropic', baseUrl: 'http://127.0.0.1:9/v1', includeUsage: false, websockets: false, anthropicVersion: '2023-06-01', ...overrides });

  it('routes a request only to upstreams speaking its protocol (OpenAI when it names none)', () => {
    const openai = member('openai');
    const anthropic = claude('anthropic');
    const router = routerOf([openai, anthropic]);
    assert.deepEqual(router.route(request('claude-sonnet-4-5')).candidates.members, [openai]);
    assert.deepEqual(router.route(request('claude-sonnet-4-5', { protocol: 'openai' })).candidates.members, [openai]);
    assert.deepEqual(router.route(request('claude-sonnet-4-5', { protocol: 'anthropic', path: '/messages' })).candidates.members, [anthropic]);
    assert.deepEqual(router.route(request(undefined, { path: '/files' })).candidates.members, [openai]);
  });

  it('keeps one candidate cache per protocol, so a model asked for in both gets both answers', () => {
    const openai = member('openai', { models: ['gpt-*', 'claude-*'] });
    const anthropic = claude('anthropic', { models: ['claude-*'] });
    const router = routerOf([openai, anthropic]);
    const inAnthropic = router.candidatesFor('claude-opus-4-1', 'anthropic');
    const inOpenAi = router.candidatesFor('claude-opus-4-1', 'openai');
    assert.deepEqual([inAnthropic.members, inOpenAi.members], [[anthropic], [openai]]);
    assert.equal(router.candidatesFor('claude-opus-4-1', 'anthropic'), inAnthropic, 'computed once');
    assert.equal(router.candidatesFor('claude-opus-4-1'), inOpenAi, 'the default protocol is OpenAI');
    assert.deepEqual(router.candidatesFor('gpt-4o', 'anthropic').members, []);
    assert.equal(inAnthropic.includeUsage, false, 'Anthropic has no stream_options');
  });

  it('refuses a model no upstream of the protocol serves, even when one of the other protocol does', () => {
    const router = routerOf([claude('anthropic', { models: ['claude-*'] })]);
    assert.throws(() => router.route(request('claude-sonnet-4-5')), { code: 'model_not_found' });
    assert.throws(() => routerOf([member('openai')]).route(request(undefined, { protocol: 'anthropic', path: '/models' })), { code: 'model_not_found', message: 'No upstream of this gateway speaks the Anthropic API.' });
  });

  it('follows an affinity only to an upstream speaking the protocol; a model-less anthropic request goes only to GET /models', () => {
    const openai = member('openai');
    const anthropic = claude('anthropic');
    const router = routerOf([openai, anthropic]);
    assert.deepEqual(router.route(request(undefined, { method: 'GET', path: '/models', affinity: { upstream: 'anthropic', upstreamKey: null }, protocol: 'anthropic' })).candidates.members, [anthropic]);
    assert.deepEqual(router.route(request(undefined, { method: 'GET', path: '/models', affinity: { upstream: 'anthropic', upstreamKey: null } })).candidates.members, [openai], 'an OpenAI request never goes to the Anthropic upstream');
    assert.throws(() => router.route(request(undefined, { path: '/files', protocol: 'anthropic' })), { code: 'model_not_found', message: /No upstream can serve \/files without knowing the model/ });
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
