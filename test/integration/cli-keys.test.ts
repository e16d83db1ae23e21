import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { storageBackends, type TestDatabase } from '../helpers/databases.js';
import { runCli, tempConfigDir, type CliResult } from '../helpers/gateway.js';

// Run against the built command: `npm run build` first.

const SECRET = /^oa-[0-9A-Za-z]{43}$/;
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** The secret of a table-mode `create`/`rotate`: the one indented line of the output. */
function secretIn(stdout: string): string {
  const lines = stdout.split('\n').filter((line) => /^\s+oa-/.test(line));
  assert.equal(lines.length, 1, stdout);
  return lines[0]!.trim();
}

function assertOneLine(result: CliResult, code: number, pattern: RegExp): void {
  assert.equal(result.code, code, result.stderr);
  assert.equal(result.stdout, '');
  assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr);
  assert.match(result.stderr, pattern);
}

function cliFor(database: TestDatabase, cwd = tempConfigDir()) {
  const run = (...args: string[]): Promise<CliResult> => runCli(args, { env: { DATABASE_URL: database.url }, cwd });
  return {
    run,
    async json<T>(...args: string[]): Promise<T> {
      const result = await run(...args, '--json');
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout) as T;
    },
    /** Every column of every app key, straight from the table. */
    rawRows: () => database.db.selectFrom('app_keys').selectAll().orderBy('name').execute(),
    rawRow: (name: string) => database.db.selectFrom('app_keys').selectAll().where('name', '=', name).executeTakeFirstOrThrow(),
  };
}

/** The keys most tests start from: "mobile" with limits, budget, defaults and metadata; "web" disabled, with origins and rpd. */
const MOBILE = [
  'keys', 'create', 'mobile',
  '--models', 'gpt-4o*,gpt-4.1-mini', '--rpm', '60', '--tpm', '90000', '--budget-usd', '25', '--budget-period', 'month',
  '--expires', '2031-01-31', '--default-model', 'gpt-4o-mini', '--temperature', '0.3', '--metadata', '{"team":"mobile"}',
];
const WEB = ['keys', 'create', 'web', '--disabled', '--allow-origin', 'https://a.example, https://b.example', '--rpd', '1000'];

for (const backend of storageBackends()) {
  describe(`openai-api keys on ${backend.name}`, () => {
    let database: TestDatabase;
    let cli: ReturnType<typeof cliFor>;
    // A fresh database per test: each makes the keys it works on, none relies on another's.
    beforeEach(async () => {
      database = await backend.open();
      cli = cliFor(database);
    });
    afterEach(() => database.cleanup());
    const createMobileAndWeb = async (): Promise<void> => {
      for (const args of [MOBILE, WEB]) {
        const result = await cli.run(...args);
        assert.equal(result.code, 0, result.stderr);
      }
    };

    test('create prints the secret once, and the row holds only its SHA-256 hash and prefix', async () => {
      const result = await cli.run(...MOBILE);
      assert.equal(result.code, 0, result.stderr);
      const secret = secretIn(result.stdout);
      assert.match(secret, SECRET);
      assert.equal(result.stdout.split(secret).length, 2, 'the secret is printed exactly once');
      assert.match(result.stdout, /store it now: it cannot be shown again/i);

      const row = await cli.rawRow('mobile');
      assert.equal(row.key_hash, sha256(secret));
      assert.equal(row.key_prefix, secret.slice(0, 11));
      assert.equal(row.source, 'cli');
      const stored = JSON.stringify(Object.values(row));
      assert.ok(!stored.includes(secret) && !stored.includes(secret.slice(11)), 'no part of the secret beyond its prefix is stored');
      assert.deepEqual(
        { models: row.models, rpm: row.rpm, tpm: row.tpm, budget: [row.budget_usd, row.budget_period], expires: row.expires_at, defaults: row.defaults, metadata: row.metadata, enabled: row.enabled },
        { models: '["gpt-4o*","gpt-4.1-mini"]', rpm: 60, tpm: 90000, budget: [25, 'month'], expires: '2031-01-31T00:00:00.000Z', defaults: '{"model":"gpt-4o-mini","temperature":0.3}', metadata: '{"team":"mobile"}', enabled: 1 },
      );
    });

    test('create --json answers name, id, key and prefix, and --disabled creates it disabled', async () => {
      const created = await cli.json<Record<string, unknown>>(...WEB);
      assert.deepEqual(Object.keys(created).slice(0, 4), ['name', 'id', 'key', 'prefix']);
      assert.match(String(created.key), SECRET);
      const row = await cli.rawRow('web');
      assert.equal(row.id, created.id);
      assert.equal(row.key_hash, sha256(String(created.key)));
      assert.equal(created.prefix, row.key_prefix);
      assert.equal(row.enabled, 0);
      assert.equal(row.allow_origin, '["https://a.example","https://b.example"]');
      assert.ok(!('key_hash' in created) && !('keyHash' in created));
    });

    test('list and show, as tables and JSON, show attributes but never a hash or a secret', async () => {
      await createMobileAndWeb();
      const rows = await cli.rawRows();
      const hashes = rows.map((row) => row.key_hash);
      const outputs: string[] = [];
      const list = await cli.run('keys', 'list');
      assert.equal(list.code, 0, list.stderr);
      outputs.push(list.stdout);
      assert.match(list.stdout, /^NAME\s+PREFIX\s+SOURCE\s+ENABLED\s+MODELS\s+LIMITS\s+BUDGET\s+EXPIRES\s+LAST USED$/m);
      const mobileLine = list.stdout.split('\n').find((line) => line.startsWith('mobile '));
      assert.match(mobileLine ?? '', new RegExp(`^mobile\\s+${rows[0]!.key_prefix}\\s+cli\\s+yes\\s+gpt-4o\\*,gpt-4\\.1-mini\\s+60 rpm, 90000 tpm\\s+\\$25\\.00 per month\\s+2031-01-31 00:00Z\\s+never$`));
      assert.match(list.stdout, /^web\s+\S+\s+cli\s+no\s+all\s+1000 rpd\s+—/m);

      const listed = await cli.json<Array<Record<string, unknown>>>('keys', 'list');
      outputs.push(JSON.stringify(listed));
      assert.deepEqual(listed.map((key) => [key.name, key.source, key.enabled]), [['mobile', 'cli', true], ['web', 'cli', false]]);

      const shown = await cli.json<Record<string, unknown>>('keys', 'show', 'mobile');
      outputs.push(JSON.stringify(shown));
      assert.deepEqual(shown, listed[0]);
      assert.deepEqual(
        [shown.models, shown.rpm, shown.budget_usd, shown.budget_period, shown.expires_at, shown.defaults, shown.metadata, shown.prefix],
        [['gpt-4o*', 'gpt-4.1-mini'], 60, 25, 'month', '2031-01-31T00:00:00.000Z', { model: 'gpt-4o-mini', temperature: 0.3 }, { team: 'mobile' }, rows[0]!.key_prefix],
      );
      const table = await cli.run('keys', 'show', 'mobile');
      outputs.push(table.stdout);
      assert.match(table.stdout, /^rpm\s+60$/m);
      assert.match(table.stdout, /^defaults\s+model=gpt-4o-mini, temperature=0\.3$/m);
      assert.match(table.stdout, /^tpm\s+90000$/m);

      for (const output of outputs) {
        for (const hash of hashes) assert.ok(!output.includes(hash), 'no key hash in the output');
        assert.ok(!/oa-[0-9A-Za-z]{43}/.test(output), 'no secret in the output');
        assert.ok(!/hash/i.test(output));
      }
    });

    test('disable and enable flip enabled, and say so when there is nothing to do', async () => {
      await createMobileAndWeb();
      const disabled = await cli.run('keys', 'disable', 'mobile');
      assert.equal(disabled.code, 0, disabled.stderr);
      assert.match(disabled.stdout, /Key "mobile" disabled/);
      assert.equal((await cli.rawRow('mobile')).enabled, 0);
      assert.match((await cli.run('keys', 'disable', 'mobile')).stdout, /already disabled/);
      const enabled = await cli.run('keys', 'enable', 'mobile');
      assert.equal(enabled.code, 0, enabled.stderr);
      assert.equal((await cli.rawRow('mobile')).enabled, 1);
      assert.equal((await cli.json<{ enabled: boolean }>('keys', 'enable', 'web')).enabled, true);
      assert.equal((await cli.rawRow('web')).enabled, 1);
    });

    test('update sets attributes, merges request defaults and clears what --clear names', async () => {
      await createMobileAndWeb();
      const updated = await cli.json<Record<string, unknown>>('keys', 'update', 'mobile', '--top-p', '0.9', '--rpd', '500', '--clear', 'rpm,metadata');
      assert.deepEqual([updated.rpm, updated.rpd, updated.metadata, updated.tpm], [null, 500, null, 90000]);
      assert.deepEqual(updated.defaults, { model: 'gpt-4o-mini', temperature: 0.3, top_p: 0.9 });
      const row = await cli.rawRow('mobile');
      assert.deepEqual([row.rpm, row.rpd, row.metadata], [null, 500, null]);
      const noDefaults = await cli.json<Record<string, unknown>>('keys', 'update', 'mobile', '--clear', 'defaults');
      assert.equal(noDefaults.defaults, null);
      assertOneLine(await cli.run('keys', 'update', 'mobile'), 2, /nothing to change/);
    });

    test('--endpoints grants extra endpoints, show lists them, and --clear endpoints takes them away', async () => {
      const created = await cli.json<Record<string, unknown>>('keys', 'create', 'tuner', '--endpoints', 'POST /v1/fine_tuning/jobs, * /v1/evals*');
      assert.deepEqual(created.endpoints, ['POST /v1/fine_tuning/jobs', '* /v1/evals*']);
      assert.equal((await cli.rawRow('tuner')).endpoints, '["POST /v1/fine_tuning/jobs","* /v1/evals*"]');
      assert.deepEqual((await cli.json<Record<string, unknown>>('keys', 'show', 'tuner')).endpoints, ['POST /v1/fine_tuning/jobs', '* /v1/evals*']);
      const table = await cli.run('keys', 'show', 'tuner');
      assert.match(table.stdout, /^endpoints\s+POST \/v1\/fine_tuning\/jobs, \* \/v1\/evals\*$/m);

      const before = await cli.rawRow('tuner');
      assertOneLine(await cli.run('keys', 'update', 'tuner', '--endpoints', 'GET /v1/models/*,post /v1/files'), 2, /--endpoints item "post \/v1\/files": method "post" is not one of GET, POST, PUT, PATCH, DELETE or \*/);
      assertOneLine(await cli.run('keys', 'create', 'x', '--endpoints', 'GET /v1/files?purpose=batch'), 2, /--endpoints item "GET \/v1\/files\?purpose=batch": path .* contains "\?"/);
      assert.deepEqual(await cli.rawRow('tuner'), before, 'a refused grant changes nothing');

      const replaced = await cli.json<Record<string, unknown>>('keys', 'update', 'tuner', '--endpoints', 'GET /v1/models/*');
      assert.deepEqual(replaced.endpoints, ['GET /v1/models/*']);
      const cleared = await cli.json<Record<string, unknown>>('keys', 'update', 'tuner', '--clear', 'endpoints');
      assert.equal(cleared.endpoints, null);
      assert.equal((await cli.rawRow('tuner')).endpoints, null);
      assert.match((await cli.run('keys', 'show', 'tuner')).stdout, /^endpoints\s+—$/m);
      assert.equal((await cli.run('keys', 'delete', 'tuner', '--yes')).code, 0);
    });

    test('rotate stores a new hash, prints the new secret once, and the old hash is gone', async () => {
      await createMobileAndWeb();
      const before = await cli.rawRow('mobile');
      const result = await cli.run('keys', 'rotate', 'mobile');
      assert.equal(result.code, 0, result.stderr);
      const secret = secretIn(result.stdout);
      assert.match(secret, SECRET);
      assert.match(result.stdout, /cannot be shown again/);
      const after = await cli.rawRow('mobile');
      assert.notEqual(after.key_hash, before.key_hash);
      assert.equal(after.key_hash, sha256(secret));
      assert.equal(after.key_prefix, secret.slice(0, 11));
      assert.equal(after.id, before.id);
      const attributes = (row: typeof before) => [row.models, row.rpm, row.tpm, row.budget_usd, row.budget_period, row.expires_at, row.defaults, row.metadata, row.enabled];
      assert.deepEqual(attributes(after), attributes(before), 'rotation keeps the attributes');
      const rotated = await cli.json<{ key: string }>('keys', 'rotate', 'mobile');
      assert.equal((await cli.rawRow('mobile')).key_hash, sha256(rotated.key));
    });

    test('create refuses a name already taken, and changes nothing', async () => {
      await createMobileAndWeb();
      const before = await cli.rawRows();
      assertOneLine(await cli.run('keys', 'create', 'mobile'), 1, /an app key with this name already exists/);
      assert.deepEqual(await cli.rawRows(), before);
    });

    test('a bad flag value or an unknown flag exits 2 with one line naming it, and changes nothing', async () => {
      // "mobile" exists, so the refusals of update and delete are about their flags.
      await createMobileAndWeb();
      const rowsBefore = await cli.rawRows();
      const listBefore = (await cli.run('keys', 'list', '--json')).stdout;
      const cases: Array<[string[], RegExp]> = [
        [['create', 'x', '--rpm', 'abc'], /--rpm is "abc": expected a positive integer/],
        [['create', 'x', '--rpm', '0'], /--rpm is "0": expected a positive integer/],
        [['create', 'x', '--tpm', '1.5'], /--tpm is "1\.5": expected a positive integer/],
        [['create', 'x', '--budget-usd', '-3'], /--budget-usd is "-3": expected a positive number of US dollars/],
        [['create', 'x', '--budget-period', 'week'], /--budget-period is "week": expected one of day, month, total/],
        [['create', 'x', '--persona-mode', 'loud'], /--persona-mode is "loud": expected one of prepend, replace, off/],
        [['create', 'x', '--temperature', '2.5'], /--temperature is "2\.5": expected a number from 0 to 2/],
        [['create', 'x', '--expires', 'soon'], /--expires is "soon": expected an ISO-8601 date/],
        [['create', 'x', '--metadata', '[1]'], /--metadata is "\[1\]": expected a JSON object/],
        [['create', 'x', '--metadata', '{oops'], /--metadata is not valid JSON/],
        [['create', 'x', '--rpm'], /--rpm needs a value/],
        [['create', 'x', '--rpm', '5', '--rpm', '6'], /--rpm is given twice/],
        [['create', 'bad name!'], /key name "bad name!" must be 1-64 letters/],
        [['create'], /missing the key name/],
        [['create', 'x', '--budget-usdd', '5'], /unknown option --budget-usdd — did you mean --budget-usd\?/],
        [['create', 'x', '--budget_usd', '5'], /unknown option --budget_usd — did you mean --budget-usd\?/],
        [['create', 'x', '--frobnicate'], /unknown option --frobnicate \(run "openai-api keys --help"/],
        [['list', '--rpm', '5'], /keys list: unknown option --rpm/],
        [['update', 'mobile', '--rpm', 'lots'], /--rpm is "lots": expected a positive integer/],
        [['update', 'mobile', '--clear', 'rpmm'], /--clear names "rpmm".*did you mean rpm\?/],
        [['update', 'mobile', '--rpm', '5', '--clear', 'rpm'], /--rpm is both set and cleared/],
        [['delete', 'mobile'], /needs --yes/],
        [['lst'], /unknown command "lst" — did you mean "list"\?/],
      ];
      // None of these may write, so they can run side by side.
      for (let start = 0; start < cases.length; start += 4) {
        const batch = cases.slice(start, start + 4);
        const results = await Promise.all(batch.map(([args]) => cli.run('keys', ...args)));
        results.forEach((result, i) => assertOneLine(result, 2, batch[i]![1]));
      }
      assert.deepEqual(await cli.rawRows(), rowsBefore);
      assert.equal((await cli.run('keys', 'list', '--json')).stdout, listBefore);
    });

    test('an unknown key name exits 1 with "no key named"', async () => {
      for (const command of ['show', 'disable', 'enable', 'rotate']) {
        assertOneLine(await cli.run('keys', command, 'nobody'), 1, new RegExp(`keys ${command}: no key named "nobody"`));
      }
      assertOneLine(await cli.run('keys', 'update', 'nobody', '--rpm', '5'), 1, /no key named "nobody"/);
      assertOneLine(await cli.run('keys', 'delete', 'nobody', '--yes'), 1, /no key named "nobody"/);
    });

    test('delete --yes removes the key', async () => {
      await createMobileAndWeb();
      const result = await cli.run('keys', 'delete', 'web', '--yes');
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Deleted key "web"/);
      assert.deepEqual((await cli.rawRows()).map((row) => row.name), ['mobile']);
    });
  });

  describe(`openai-api keys with config.json keys on ${backend.name}`, () => {
    const configSecret = 'oa-from-config-file-0123456789';
    let database: TestDatabase;
    let cli: ReturnType<typeof cliFor>;
    let configPath: string;
    before(async () => {
      database = await backend.open();
      const dir = tempConfigDir({ keys: [{ name: 'ci', key: configSecret, rpm: 5, models: ['gpt-4o-mini'] }] });
      configPath = join(dir, 'config.json');
      cli = cliFor(database, dir);
    });
    after(() => database.cleanup());

    test('a config.json key shows in list with source config, hashed like any other', async () => {
      const listed = await cli.json<Array<Record<string, unknown>>>('keys', 'list');
      assert.deepEqual(listed.map((key) => [key.name, key.source, key.rpm, key.models]), [['ci', 'config', 5, ['gpt-4o-mini']]]);
      const row = await cli.rawRow('ci');
      assert.equal(row.key_hash, sha256(configSecret));
      assert.ok(!JSON.stringify(Object.values(row)).includes(configSecret));
      const table = await cli.run('keys', 'list');
      assert.match(table.stdout, /^ci\s+oa-from-con\s+config\s+yes\s+gpt-4o-mini\s+5 rpm/m);
      assert.ok(!table.stdout.includes(configSecret));
    });

    test('--config PATH finds the same config from another directory', async () => {
      const elsewhere = runCli(['keys', 'show', 'ci', '--json', '--config', configPath], { env: { DATABASE_URL: database.url } });
      const shown = JSON.parse((await elsewhere).stdout) as Record<string, unknown>;
      assert.equal(shown.source, 'config');
    });

    test('rotate, delete, update, disable and enable refuse config keys and change nothing', async () => {
      // Any command brings config.json's keys into the database first.
      assert.equal((await cli.run('keys', 'show', 'ci')).code, 0);
      const before = await cli.rawRow('ci');
      assertOneLine(await cli.run('keys', 'rotate', 'ci'), 1, /key "ci" is managed in .*config\.json .*change its "key"/);
      assertOneLine(await cli.run('keys', 'delete', 'ci', '--yes'), 1, /key "ci" is managed in .*config\.json .*remove it from "keys" there/);
      assertOneLine(await cli.run('keys', 'update', 'ci', '--rpm', '9'), 1, /managed in .*config\.json/);
      assertOneLine(await cli.run('keys', 'disable', 'ci'), 1, /managed in .*config\.json.*"enabled": false/);
      assertOneLine(await cli.run('keys', 'enable', 'ci'), 1, /managed in .*config\.json/);
      assert.deepEqual(await cli.rawRow('ci'), before);
    });
  });
}

describe('openai-api keys without a usable database', () => {
  test('a database that cannot be opened exits 1 with one line, and no password', async () => {
    const result = await runCli(['keys', 'list'], { env: { DATABASE_URL: 'postgres://gateway:hunter2-secret@127.0.0.1:1/gateway' } });
    assertOneLine(result, 1, /^openai-api keys list: cannot connect to PostgreSQL at postgres:\/\/gateway:\*\*\*@127\.0\.0\.1:1\/gateway/);
    assert.ok(!result.stderr.includes('hunter2'));
  });

  test('a bad config exits 1 with the config error line', async () => {
    const result = await runCli(['keys', 'list'], { env: { DATABASE_URL: 'nonsense' } });
    assertOneLine(result, 1, /config error: DATABASE_URL \(env var\) is "nonsense"/);
  });

  test('help lists the commands and flags', async () => {
    const help = await runCli(['keys', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /keys create NAME/);
    assert.match(help.stdout, /--budget-usd X\s+a positive number/);
    assert.match(help.stdout, /--endpoints LIST\s+extra endpoints, at your own risk/);
    assert.match((await runCli(['--help'])).stdout, /openai-api keys create NAME/);
  });
});
