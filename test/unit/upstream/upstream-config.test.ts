import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, upstreamsFromConfig } from '../../../src/config/index.js';
import { tempConfigDir } from '../../helpers/temp-config.js';

const load = (file: Record<string, unknown> | undefined, env: Record<string, string> = {}) => loadConfig({ env, cwd: tempConfigDir(file) });
const SECRET = 'sk-proj-secret-never-shown-1234';

function configError(file: Record<string, unknown> | undefined, env: Record<string, string> = {}): string {
  try {
    load(file, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.ok(!error.message.includes('\n'), 'config errors are one line');
    assert.ok(!error.message.includes(SECRET), 'config errors never show a key');
    return error.message;
  }
  assert.fail('expected a config error');
}

const openai = { name: 'openai', type: 'openai', base_url: 'https://api.openai.com/v1', api_keys: [SECRET] };
const azure = { name: 'azure', type: 'azure', base_url: 'https://res.openai.azure.com', api_keys: 'az-key-1234567890', api_version: '2024-10-21', deployments: { 'gpt-4o': 'my-gpt4o' } };
const anthropic = { name: 'claude', type: 'anthropic', base_url: 'https://api.anthropic.com/v1', api_keys: ['sk-ant-api03-key-0123456789'], models: ['claude-*'] };
const withUpstream = (entry: Record<string, unknown>) => ({ upstreams: [openai, entry] });

describe('upstreams config', () => {
  it('reads entries with their defaults, keys from a "|" list or an environment variable, camelCased', () => {
    const config = load({
      proxy: 'http://127.0.0.1:3128',
      upstreams: [
        { ...openai, api_keys: 'k-one-aaaa|k-two-bbbb', base_url: 'https://api.openai.com/v1/' },
        { ...azure, api_keys: undefined, api_keys_env: 'AZURE_KEYS', weight: 3, proxy: '' },
        { name: 'ollama', type: 'openai-compatible', base_url: 'http://127.0.0.1:11434/v1', models: ['llama3*', 'qwen2.5:7b'], headers: { 'X-Title': 'gw' }, include_usage: false },
      ],
    }, { AZURE_KEYS: 'az-a | az-b' });
    const [first, second, third] = config.upstreams;
    assert.deepEqual(first, {
      name: 'openai', type: 'openai', baseUrl: 'https://api.openai.com/v1', apiKeys: ['k-one-aaaa', 'k-two-bbbb'], weight: 1, models: ['*'], headers: {},
      apiVersion: undefined, deployments: {}, proxy: 'http://127.0.0.1:3128', includeUsage: true, websockets: true, anthropicVersion: undefined,
    });
    assert.equal(second!.websockets, true, 'Azure has Realtime WebSockets');
    assert.equal(third!.websockets, false, 'an openai-compatible provider has none unless configured');
    assert.equal(load({ upstreams: [{ ...openai, websockets: false }] }).upstreams[0]!.websockets, false);
    assert.deepEqual(second!.apiKeys, ['az-a', 'az-b']);
    assert.equal(second!.weight, 3);
    assert.equal(second!.proxy, undefined, 'proxy "" connects directly despite the global proxy');
    assert.equal(second!.apiVersion, '2024-10-21');
    assert.deepEqual(second!.deployments, { 'gpt-4o': 'my-gpt4o' });
    assert.deepEqual(third!.apiKeys, [], 'an openai-compatible upstream may have no key');
    assert.deepEqual(third!.headers, { 'x-title': 'gw' });
    assert.equal(third!.includeUsage, false);
    assert.ok(Object.isFrozen(config.upstreams) && Object.isFrozen(first));
  });

  it('reads an anthropic entry: anthropic_version defaults to 2023-06-01, no include_usage, no WebSockets', () => {
    const [claude, pinned] = load({ upstreams: [anthropic, { ...anthropic, name: 'pinned', anthropic_version: '2024-01-01', include_usage: false, websockets: false }] }).upstreams;
    assert.deepEqual(claude, {
      name: 'claude', type: 'anthropic', baseUrl: 'https://api.anthropic.com/v1', apiKeys: ['sk-ant-api03-key-0123456789'], weight: 1, models: ['claude-*'], headers: {},
      apiVersion: undefined, deployments: {}, proxy: undefined, includeUsage: false, websockets: false, anthropicVersion: '2023-06-01',
    });
    assert.equal(pinned!.anthropicVersion, '2024-01-01');
    assert.equal(load({ upstreams: [openai] }).upstreams[0]!.anthropicVersion, undefined);
  });

  it('reads UPSTREAMS (JSON) over the file', () => {
    const config = load({ upstreams: [openai] }, { UPSTREAMS: JSON.stringify([{ ...openai, name: 'from-env' }]) });
    assert.equal(config.upstreams[0]!.name, 'from-env');
  });

  it('has pool settings with documented defaults, in ms', () => {
    assert.deepEqual(load(undefined).pool, { maxAttempts: 3, retryBaseDelayMs: 250, cooldownMs: 30_000, circuitErrorRatio: 0.5, circuitMinRequests: 10, circuitWindowMs: 30_000, circuitOpenMs: 30_000 });
    const pool = load({ max_attempts: 5, retry_base_delay: 0.1, cooldown: 60 }, { CIRCUIT_ERROR_RATIO: '0.8', CIRCUIT_MIN_REQUESTS: '20', CIRCUIT_WINDOW: '60', CIRCUIT_OPEN: '10' }).pool;
    assert.deepEqual(pool, { maxAttempts: 5, retryBaseDelayMs: 100, cooldownMs: 60_000, circuitErrorRatio: 0.8, circuitMinRequests: 20, circuitWindowMs: 60_000, circuitOpenMs: 10_000 });
    assert.match(configError({ max_attempts: 0 }), /"max_attempts" .* expected an integer from 1 to 10/);
    assert.match(configError(undefined, { CIRCUIT_ERROR_RATIO: '1.5' }), /CIRCUIT_ERROR_RATIO \(env var\)/);
  });

  it('builds the one "default" upstream from the seed fields when upstreams is absent', () => {
    const config = load({ api_key: 'sk-a|sk-b', base_url: 'http://127.0.0.1:9/v1', proxy: 'http://127.0.0.1:3128', openai_organization: 'org-x' });
    assert.deepEqual(config.upstreams, []);
    assert.deepEqual(upstreamsFromConfig(config), [
      {
        name: 'default', type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKeys: ['sk-a', 'sk-b'], weight: 1, models: ['*'],
        headers: { 'openai-organization': 'org-x' }, apiVersion: undefined, deployments: {}, proxy: 'http://127.0.0.1:3128', includeUsage: true, websockets: true, anthropicVersion: undefined,
      },
    ]);
    assert.deepEqual(upstreamsFromConfig(load({ upstreams: [openai] })).map((u) => u.name), ['openai']);
  });
});

describe('a bad upstream entry stops start-up with one line naming upstreams[i].field', () => {
  const cases: Array<[string, Record<string, unknown> | undefined, RegExp, Record<string, string>?]> = [
    ['a URL that is not http(s)', withUpstream({ ...openai, name: 'b', base_url: 'ftp://example.test' }), /"upstreams\[1\]\.base_url" in .*config\.json is "ftp:\/\/example\.test": must be an http:\/\/ or https:\/\/ URL/],
    ['a URL that does not parse', withUpstream({ ...openai, name: 'b', base_url: 'not a url' }), /upstreams\[1\]\.base_url/],
    ['an openai upstream without keys', withUpstream({ ...openai, name: 'b', api_keys: undefined }), /"upstreams\[1\]\.api_keys" .* missing: an upstream of type "openai" needs at least one key/],
    ['an openai upstream with an empty key list', withUpstream({ ...openai, name: 'b', api_keys: ' | ' }), /upstreams\[1\]\.api_keys.*needs at least one key/],
    ['an azure upstream without keys', { upstreams: [{ ...azure, api_keys: undefined }] }, /upstreams\[0\]\.api_keys.*type "azure" needs at least one key/],
    ['an unknown type', withUpstream({ ...openai, name: 'b', type: 'bedrock' }), /"upstreams\[1\]\.type" .* is "bedrock": must be "openai", "azure", "openai-compatible" or "anthropic"/],
    ['an anthropic upstream without keys', { upstreams: [{ ...anthropic, api_keys: undefined }] }, /upstreams\[0\]\.api_keys.*type "anthropic" needs at least one key/],
    ['api_version on an anthropic upstream', { upstreams: [{ ...anthropic, api_version: '2024-10-21' }] }, /upstreams\[0\]\.api_version.*only azure/],
    ['deployments on an anthropic upstream', { upstreams: [{ ...anthropic, deployments: { 'claude-x': 'd' } }] }, /upstreams\[0\]\.deployments.*only azure/],
    ['include_usage on an anthropic upstream', { upstreams: [{ ...anthropic, include_usage: true }] }, /upstreams\[0\]\.include_usage.*always reports usage/],
    ['websockets on an anthropic upstream', { upstreams: [{ ...anthropic, websockets: true }] }, /upstreams\[0\]\.websockets.*has no WebSockets/],
    ['anthropic_version on an openai upstream', withUpstream({ ...openai, name: 'b', anthropic_version: '2023-06-01' }), /upstreams\[1\]\.anthropic_version.*only anthropic upstreams/],
    ['an anthropic_version that is not a date', { upstreams: [{ ...anthropic, anthropic_version: 'latest' }] }, /upstreams\[0\]\.anthropic_version.*must be a dated API version/],
    ['azure without api_version', { upstreams: [{ ...azure, api_version: undefined }] }, /"upstreams\[0\]\.api_version" .* missing: an azure upstream needs api_version/],
    ['azure without deployments', { upstreams: [{ ...azure, deployments: undefined }] }, /"upstreams\[0\]\.deployments" .* missing: an azure upstream needs deployments/],
    ['azure with empty deployments', { upstreams: [{ ...azure, deployments: {} }] }, /upstreams\[0\]\.deployments.*needs deployments/],
    ['a deployment name with a slash', { upstreams: [{ ...azure, deployments: { 'gpt-4o': 'a/b' } }] }, /upstreams\[0\]\.deployments\.gpt-4o.*must be a deployment name/],
    ['api_version on a non-azure upstream', withUpstream({ ...openai, name: 'b', api_version: '2024-10-21' }), /upstreams\[1\]\.api_version.*only azure/],
    ['two upstreams with one name', { upstreams: [openai, { ...openai }] }, /"upstreams\[1\]\.name" .* is "openai": is already the name of upstreams\[0\]/],
    ['an empty model glob', withUpstream({ ...openai, name: 'b', models: [''] }), /"upstreams\[1\]\.models\[0\]" .* is "": must be a model name or glob/],
    ['a model glob with a space', withUpstream({ ...openai, name: 'b', models: ['gpt-4o', 'gpt 4o*'] }), /upstreams\[1\]\.models\[1\].*is "gpt 4o\*": must be a model name or glob/],
    ['a model glob with "?"', withUpstream({ ...openai, name: 'b', models: ['gpt-4?'] }), /upstreams\[1\]\.models\[0\]/],
    ['an empty models list', withUpstream({ ...openai, name: 'b', models: [] }), /upstreams\[1\]\.models.*at least one model/],
    ['a weight of 0', withUpstream({ ...openai, name: 'b', weight: 0 }), /upstreams\[1\]\.weight.*positive number/],
    ['both api_keys and api_keys_env', withUpstream({ ...openai, name: 'b', api_keys_env: 'X' }), /upstreams\[1\]\.api_keys_env.*not both/],
    ['api_keys_env naming an unset variable', withUpstream({ name: 'b', type: 'openai', base_url: 'https://x.test/v1', api_keys_env: 'NOPE_KEYS' }), /upstreams\[1\]\.api_keys_env names NOPE_KEYS, which is not set/],
    ['the same key twice', withUpstream({ ...openai, name: 'b', api_keys: [SECRET, SECRET] }), /upstreams\[1\]\.api_keys lists key #0 again as key #1/],
    ['a header with a line break', withUpstream({ ...openai, name: 'b', headers: { 'x-a': 'v\r\nx-evil: 1' } }), /upstreams\[1\]\.headers\.x-a.*line breaks/],
    ['a reserved header', withUpstream({ ...openai, name: 'b', headers: { Host: 'x' } }), /upstreams\[1\]\.headers\.Host.*cannot be configured/],
    ['an unknown field', withUpstream({ ...openai, name: 'b', wieght: 2 }), /upstreams\[1\]\.wieght is not an upstream field \(known: name, type/],
    ['a near-miss field, without printing its value', withUpstream({ name: 'b', type: 'openai', base_url: 'https://x.test/v1', api_keys: 'k', api_key: SECRET }), /upstreams\[1\]\.api_key is not an upstream field; did you mean "api_keys"\?/],
    ['a bad proxy', withUpstream({ ...openai, name: 'b', proxy: 'socks5://x' }), /upstreams\[1\]\.proxy/],
    ['a name with a space', withUpstream({ ...openai, name: 'my upstream' }), /upstreams\[1\]\.name.*letters, digits/],
    ['an empty list', { upstreams: [] }, /"upstreams" .* needs at least one upstream|upstreams.*expected an array/],
    ['not an array', { upstreams: { name: 'x' } }, /"upstreams" .*expected an array of upstreams/],
    ['a bad entry in UPSTREAMS', undefined, /upstreams\[0\]\.type in UPSTREAMS \(env var\) is "nope"/, { UPSTREAMS: JSON.stringify([{ ...openai, type: 'nope' }]) }],
  ];
  for (const [what, file, expected, env] of cases) {
    it(`refuses ${what}`, () => assert.match(configError(file, env), expected));
  }
});
