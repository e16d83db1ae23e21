import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/config/index.js';
import { assertSafeToListen, decideAuthMode } from '../../../src/config/safety.js';
import { tempConfigDir } from '../../helpers/temp-config.js';

const load = (env: Record<string, string>, file?: Record<string, unknown>) => loadConfig({ env: { PORT: '8080', ...env }, cwd: tempConfigDir(file) });

describe('decideAuthMode: open or keyed, from configuration only', () => {
  it('is open with no credential anywhere on a loopback address', () => {
    for (const host of ['127.0.0.1', '127.8.9.10', 'localhost', '::1']) {
      assert.deepEqual(decideAuthMode(load({ HOST: host }), 0), { mode: 'open' }, host);
    }
  });

  it('is keyed as soon as an access token, a config key or an app key in the database exists, whatever the address', () => {
    for (const host of ['127.0.0.1', '0.0.0.0']) {
      assert.equal(decideAuthMode(load({ HOST: host, ACCESS_TOKEN: 'token' }), 0).mode, 'keyed');
      assert.equal(decideAuthMode(load({ HOST: host }, { keys: [{ name: 'ci', key: 'config-key-secret-0123456789' }] }), 0).mode, 'keyed');
      assert.equal(decideAuthMode(load({ HOST: host }), 1).mode, 'keyed');
    }
  });

  it('refuses an open public address and says how to fix it, unless allow_anonymous is set', () => {
    const decision = decideAuthMode(load({ HOST: '0.0.0.0' }), 0);
    assert.equal(decision.mode, 'refused');
    assert.ok(decision.mode === 'refused');
    assert.match(decision.reason, /^config error: no access_token is set and no app key exists, so anyone who can reach 0\.0\.0\.0:8080 could spend your API quota/);
    assert.match(decision.reason, /set access_token \(ACCESS_TOKEN\) or create an app key/);
    assert.match(decision.reason, /allow_anonymous: true \(ALLOW_ANONYMOUS=true\)/);
    assert.ok(!decision.reason.includes('\n'));
    assert.deepEqual(decideAuthMode(load({ HOST: '0.0.0.0', ALLOW_ANONYMOUS: 'true' }), 0), { mode: 'open' });
    assert.equal(decideAuthMode(load({ HOST: '10.1.2.3' }), 0).mode, 'refused');
  });

  it('judges the address it is given: a reload is judged on the one start-up bound', () => {
    const loopbackConfig = load({ HOST: '127.0.0.1' });
    assert.equal(decideAuthMode(loopbackConfig, 0, '0.0.0.0').mode, 'refused');
    assert.equal(decideAuthMode(load({ HOST: '0.0.0.0' }), 0, '127.0.0.1').mode, 'open');
  });
});

describe('assertSafeToListen', () => {
  it('throws the refusal as a one-line ConfigError and passes every other decision', () => {
    assert.throws(() => assertSafeToListen(load({ HOST: '0.0.0.0' }), 0), (error: unknown) => error instanceof ConfigError && /no access_token is set/.test(error.message));
    assert.doesNotThrow(() => assertSafeToListen(load({ HOST: '0.0.0.0' }), 2));
    assert.doesNotThrow(() => assertSafeToListen(load({ HOST: '127.0.0.1' }), 0));
  });
});
