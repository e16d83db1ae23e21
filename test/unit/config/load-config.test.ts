import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/config/index.js';
import { tempConfigDir } from '../../helpers/temp-config.js';

const load = (file: Record<string, unknown> | string | undefined, env: Record<string, string> = {}) => loadConfig({ env, cwd: tempConfigDir(file) });

function configError(file: Record<string, unknown> | string | undefined, env: Record<string, string> = {}): string {
  try {
    load(file, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.ok(!error.message.includes('\n'), 'config errors are one line');
    return error.message;
  }
  assert.fail('expected a config error');
}

describe('config defaults', () => {
  it('uses the seed documented defaults, with gpt-4o-mini as the model', () => {
    const config = load(undefined);
    assert.equal(config.server.port, 8080);
    assert.equal(config.server.host, '0.0.0.0');
    assert.equal(config.allowOrigin, '*');
    assert.deepEqual(config.defaults, { botDesc: '', model: 'gpt-4o-mini', maxTokens: 512, temperature: 0.9, topP: 1, frequencyPenalty: 0, presencePenalty: 0.6 });
    assert.equal(config.upstream.baseUrl, 'https://api.openai.com/v1');
    assert.deepEqual(config.upstream.apiKeys, []);
    assert.deepEqual(config.accessTokens, []);
    assert.equal(config.upstream.proxy, undefined);
    assert.equal(config.server.bodyLimit, 1024 * 1024);
    assert.equal(config.server.v1BodyLimit, 32 * 1024 * 1024);
    assert.equal(config.configFile, undefined);
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.defaults));
  });
});

describe('config keys from the file and from the environment', () => {
  const cases: Array<{ key: string; fileValue: unknown; env: string; envValue: string; read: (c: ReturnType<typeof load>) => unknown; fromFile: unknown; fromEnv: unknown }> = [
    { key: 'api_key', fileValue: 'sk-a|sk-b', env: 'APIKEY', envValue: 'sk-c|sk-d|sk-e', read: (c) => c.upstream.apiKeys, fromFile: ['sk-a', 'sk-b'], fromEnv: ['sk-c', 'sk-d', 'sk-e'] },
    { key: 'access_token', fileValue: 't1,t2', env: 'ACCESS_TOKEN', envValue: 't3', read: (c) => c.accessTokens, fromFile: ['t1', 't2'], fromEnv: ['t3'] },
    { key: 'allow_origin', fileValue: 'https://a.example,https://b.example', env: 'ALLOW_ORIGIN', envValue: '*', read: (c) => c.allowOrigin, fromFile: ['https://a.example', 'https://b.example'], fromEnv: '*' },
    { key: 'port', fileValue: 9000, env: 'PORT', envValue: '9100', read: (c) => c.server.port, fromFile: 9000, fromEnv: 9100 },
    { key: 'host', fileValue: '127.0.0.1', env: 'HOST', envValue: '::1', read: (c) => c.server.host, fromFile: '127.0.0.1', fromEnv: '::1' },
    { key: 'bot_desc', fileValue: 'You are a cat.', env: 'BOT_DESC', envValue: 'You are a dog.', read: (c) => c.defaults.botDesc, fromFile: 'You are a cat.', fromEnv: 'You are a dog.' },
    { key: 'max_tokens', fileValue: 1024, env: 'MAX_TOKENS', envValue: '256', read: (c) => c.defaults.maxTokens, fromFile: 1024, fromEnv: 256 },
    { key: 'model', fileValue: 'gpt-4o', env: 'MODEL', envValue: 'gpt-4.1', read: (c) => c.defaults.model, fromFile: 'gpt-4o', fromEnv: 'gpt-4.1' },
    { key: 'temperature', fileValue: 0.5, env: 'TEMPREATURE', envValue: '0.2', read: (c) => c.defaults.temperature, fromFile: 0.5, fromEnv: 0.2 },
    { key: 'temperature', fileValue: 0.5, env: 'TEMPERATURE', envValue: '1.5', read: (c) => c.defaults.temperature, fromFile: 0.5, fromEnv: 1.5 },
    { key: 'top_p', fileValue: 0.8, env: 'TOP_P', envValue: '0.3', read: (c) => c.defaults.topP, fromFile: 0.8, fromEnv: 0.3 },
    { key: 'frequency_penalty', fileValue: 1, env: 'FREQ', envValue: '-1.5', read: (c) => c.defaults.frequencyPenalty, fromFile: 1, fromEnv: -1.5 },
    { key: 'presence_penalty', fileValue: 0, env: 'PRES', envValue: '2', read: (c) => c.defaults.presencePenalty, fromFile: 0, fromEnv: 2 },
    { key: 'proxy', fileValue: 'http://127.0.0.1:3128', env: 'PROXY', envValue: 'http://127.0.0.1:8888', read: (c) => c.upstream.proxy, fromFile: 'http://127.0.0.1:3128', fromEnv: 'http://127.0.0.1:8888' },
    { key: 'base_url', fileValue: 'http://127.0.0.1:1234/v1/', env: 'BASE_URL', envValue: 'https://example.test/openai/v1', read: (c) => c.upstream.baseUrl, fromFile: 'http://127.0.0.1:1234/v1', fromEnv: 'https://example.test/openai/v1' },
    { key: 'allow_anonymous', fileValue: true, env: 'ALLOW_ANONYMOUS', envValue: 'false', read: (c) => c.server.allowAnonymous, fromFile: true, fromEnv: false },
    { key: 'body_limit', fileValue: '2MiB', env: 'BODY_LIMIT', envValue: '4096', read: (c) => c.server.bodyLimit, fromFile: 2 * 1024 * 1024, fromEnv: 4096 },
    { key: 'log_bodies', fileValue: true, env: 'LOG_BODIES', envValue: 'no', read: (c) => c.log.bodies, fromFile: true, fromEnv: false },
  ];
  for (const c of cases) {
    it(`${c.key} is read from config.json`, () => assert.deepEqual(c.read(load({ [c.key]: c.fileValue })), c.fromFile));
    it(`${c.env} overrides ${c.key} from config.json`, () => assert.deepEqual(c.read(load({ [c.key]: c.fileValue }, { [c.env]: c.envValue })), c.fromEnv));
  }

  it('accepts OPENAI_API_KEY and OPENAI_BASE_URL as aliases, the seed names winning', () => {
    assert.deepEqual(load(undefined, { OPENAI_API_KEY: 'sk-alias' }).upstream.apiKeys, ['sk-alias']);
    assert.deepEqual(load(undefined, { OPENAI_API_KEY: 'sk-alias', APIKEY: 'sk-seed' }).upstream.apiKeys, ['sk-seed']);
    assert.equal(load(undefined, { OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' }).upstream.baseUrl, 'http://127.0.0.1:9/v1');
  });

  it('treats an empty environment variable as unset, as the seed did', () => {
    assert.equal(load({ model: 'gpt-4o' }, { MODEL: '' }).defaults.model, 'gpt-4o');
  });

  it('reads the file named by CONFIG_FILE, and --config over it', () => {
    const a = tempConfigDir({ model: 'from-a' });
    const b = tempConfigDir({ model: 'from-b' });
    assert.equal(loadConfig({ env: { CONFIG_FILE: `${a}/config.json` }, cwd: b }).defaults.model, 'from-a');
    assert.equal(loadConfig({ env: { CONFIG_FILE: `${a}/config.json` }, cwd: b, configPath: `${b}/config.json` }).defaults.model, 'from-b');
  });

  it('accepts the seed example config.json unchanged (lists in arrays too)', () => {
    const config = load({ api_key: 'sk-x', access_token: 'abc', allow_origin: '*', port: 8080, bot_desc: '以下是与AI助手的对话。', max_tokens: 1024, model: 'text-davinci-003', temperature: 0.9, top_p: 1, frequency_penalty: 0.0, presence_penalty: 0.6 });
    assert.equal(config.defaults.maxTokens, 1024);
    assert.deepEqual(load({ api_key: ['sk-1', 'sk-2'] }).upstream.apiKeys, ['sk-1', 'sk-2']);
  });
});

describe('bad configuration stops start-up with one clear line', () => {
  it('names the env var and what a temperature must be', () => {
    const message = configError(undefined, { TEMPREATURE: 'hot' });
    assert.match(message, /TEMPREATURE \(env var\)/);
    assert.match(message, /"hot"/);
    assert.match(message, /a number from 0 to 2/);
  });
  it('names the file key for a port out of range', () => {
    const message = configError({ port: 70000 });
    assert.match(message, /"port" in .*config\.json/);
    assert.match(message, /70000/);
    assert.match(message, /integer from 0 to 65535/);
  });
  it('points at the line and column of malformed JSON', () => {
    const message = configError('{\n  "port": 8080,\n  "model": \n}');
    assert.match(message, /config\.json is not valid JSON/);
    assert.match(message, /line 4/);
  });
  it('suggests the known key for a near-miss name', () => {
    assert.match(configError({ temprature: 0.5 }), /unknown key "temprature" .* did you mean "temperature"\?/);
    assert.match(configError({ acess_token: 'x' }), /did you mean "access_token"/);
    assert.match(configError({ 'Base-URL': 'http://x' }), /did you mean "base_url"/);
  });
  it('lists the known keys for an unknown key nothing like them', () => {
    assert.match(configError({ wibble_wobble_zzz: 1 }), /unknown key "wibble_wobble_zzz".*known keys: api_key/);
  });
  it('rejects a non-object config file', () => assert.match(configError('[1,2]'), /must hold a JSON object/));
  it('rejects MAX_TOKENS=abc without skipping the variables after it (the seed did)', () => {
    assert.match(configError(undefined, { MAX_TOKENS: 'abc', MODEL: 'gpt-4o' }), /MAX_TOKENS \(env var\) is "abc": expected a positive integer/);
  });
  it('rejects a bad base URL, proxy, boolean and size', () => {
    assert.match(configError({ base_url: 'ftp://example.test' }), /"base_url" .* expected an http:\/\/ or https:\/\/ URL/);
    assert.match(configError(undefined, { PROXY: 'not a url' }), /PROXY \(env var\)/);
    assert.match(configError(undefined, { ALLOW_ANONYMOUS: 'maybe' }), /ALLOW_ANONYMOUS \(env var\) is "maybe": expected true or false/);
    assert.match(configError({ body_limit: 'lots' }), /"body_limit" .* expected a size/);
  });
  it('rejects TEMPREATURE and TEMPERATURE set to different values', () => {
    assert.match(configError(undefined, { TEMPREATURE: '0.1', TEMPERATURE: '0.2' }), /both set/);
  });
  it('rejects a missing file named explicitly', () => {
    assert.throws(() => loadConfig({ env: { CONFIG_FILE: '/nonexistent/openai-api.json' } }), /does not exist \(named by CONFIG_FILE\)/);
  });
});

describe('config errors never echo secrets', () => {
  it('hides a bad admin token, key entries and JSON with keys', () => {
    const admin = configError(undefined, { ADMIN_TOKEN: 'short-secret' });
    assert.match(admin, /ADMIN_TOKEN \(env var\) is invalid \(value hidden: 12 characters\)/);
    assert.ok(!admin.includes('short-secret'));
    const entry = configError({ keys: [{ name: 'app', key: 'sk-very-secret-value-123', rmp: 3 }] });
    assert.ok(!entry.includes('sk-very-secret-value-123'), entry);
    assert.match(entry, /keys\[0\]/);
    const short = configError({ keys: [{ name: 'app', key: 'tiny-secret' }] });
    assert.ok(!short.includes('tiny-secret'), short);
    const json = configError(undefined, { UPSTREAMS: '[{"name":"a","api_keys":"sk-leak-me-please"' });
    assert.ok(!json.includes('sk-leak-me-please'), json);
    assert.match(json, /UPSTREAMS \(env var\) is not valid JSON: syntax error at line 1/);
  });
});
