import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { generateKeySecret, hashKeySecret, keyPrefix } from '../../../src/auth/key-secret.js';
import { KeysRepository } from '../../../src/storage/keys-repository.js';
import type { ConfigKeyEntry, NewAppKey } from '../../../src/storage/keys-repository.js';
import { StorageError } from '../../../src/storage/storage-error.js';
import { storageBackends } from '../../helpers/databases.js';
import type { TestDatabase } from '../../helpers/databases.js';

/** A new key's hash and prefix, plus the secret a real caller would be shown once. */
function secretFields(): { secret: string; keyHash: string; keyPrefix: string } {
  const secret = generateKeySecret();
  return { secret, keyHash: hashKeySecret(secret), keyPrefix: keyPrefix(secret) };
}

function newKey(name: string, extra: Partial<NewAppKey> = {}): NewAppKey {
  const { keyHash, keyPrefix: prefix } = secretFields();
  return { name, keyHash, keyPrefix: prefix, source: 'cli', ...extra };
}

function configKey(name: string, extra: Partial<ConfigKeyEntry> = {}): ConfigKeyEntry {
  const { keyHash, keyPrefix: prefix } = secretFields();
  return { name, keyHash, keyPrefix: prefix, ...extra };
}

function isStorageError(code: StorageError['code']) {
  return (error: unknown) => error instanceof StorageError && error.code === code;
}

for (const backend of storageBackends()) {
  describe(backend.name, () => {
    let database: TestDatabase;
    let keys: KeysRepository;
    before(async () => {
      database = await backend.open();
      keys = new KeysRepository(database);
    });
    after(async () => {
      await database.cleanup();
    });

    test('create fills defaults and every lookup finds the key', async () => {
      const input = newKey('alpha');
      const created = await keys.create(input);
      assert.match(created.id, /^key_[0-9A-Za-z]+$/);
      assert.equal(created.name, 'alpha');
      assert.equal(created.keyHash, input.keyHash);
      assert.equal(created.keyPrefix, input.keyPrefix);
      assert.equal(created.source, 'cli');
      assert.equal(created.enabled, true);
      assert.ok(created.createdAt instanceof Date && Math.abs(created.createdAt.getTime() - Date.now()) < 60_000);
      assert.deepEqual(created.updatedAt, created.createdAt);
      for (const field of ['expiresAt', 'lastUsedAt', 'models', 'rpm', 'budgetTokens', 'defaults', 'endpoints', 'metadata'] as const) {
        assert.equal(created[field], null, field);
      }
      assert.deepEqual(await keys.getByName('alpha'), created);
      assert.deepEqual(await keys.getById(created.id), created);
      assert.deepEqual(await keys.findByHash(input.keyHash), created);
      assert.equal(await keys.getByName('missing'), undefined);
      assert.equal(await keys.getById('key_missing'), undefined);
      assert.equal(await keys.findByHash('0'.repeat(64)), undefined);
    });

    test('list returns every key ordered by name, the same on every backend', async () => {
      for (const name of ['list-b', 'list-a', 'list-B', 'list-a-2']) await keys.create(newKey(name));
      const names = (await keys.list()).map((key) => key.name).filter((name) => name.startsWith('list-'));
      assert.deepEqual(names, ['list-B', 'list-a', 'list-a-2', 'list-b']);
    });

    test('a duplicate name or secret hash is a conflict', async () => {
      const first = await keys.create(newKey('dupe'));
      await assert.rejects(keys.create(newKey('dupe')), (error: unknown) => {
        assert.ok(isStorageError('conflict')(error));
        assert.match((error as Error).message, /name already exists/);
        return true;
      });
      await assert.rejects(keys.create(newKey('dupe-hash', { keyHash: first.keyHash })), (error: unknown) => {
        assert.ok(isStorageError('conflict')(error));
        assert.match((error as Error).message, /already has this secret/);
        return true;
      });
    });

    test('JSON and numeric settings round-trip exactly', async () => {
      const settings = {
        models: ['gpt-4o*', 'o3-mini', 'ft:*:acme:*'],
        defaults: { model: 'gpt-4o-mini', temperature: 0.2, top_p: 0.9, max_tokens: 512, frequency_penalty: 0, presence_penalty: -0.5 },
        allowOrigin: ['https://app.example.com', 'http://localhost:5173'],
        endpoints: ['POST /v1/fine_tuning/jobs', '* /v1/evals*', 'GET /v1/models/*'],
        metadata: { team: 'søk', nested: { list: [1, 'two', null, true] }, emoji: '🔑' },
        rpm: 60,
        tpm: 90_000,
        rpd: 10_000,
        budgetTokens: 5_000_000_000, // beyond int32: proves bigint comes back as an exact number
        budgetUsd: 12.345,
        budgetPeriod: 'month' as const,
        botDesc: 'Support bot.\nAnswers in "quotes" and \'apostrophes\'.',
        personaMode: 'prepend' as const,
        maxTokensCeiling: 4096,
        memory: false,
        memoryMaxTokens: 2000,
        memoryMaxTurns: 20,
        memoryTtl: 86_400,
        cacheTtl: 0,
        cacheGroup: 'team.a-1',
        expiresAt: new Date('2031-02-03T04:05:06.789Z'),
        enabled: false,
      };
      const created = await keys.create(newKey('json', settings));
      const read = await keys.getByName('json');
      assert.deepEqual(read, created);
      assert.deepEqual({ ...read, id: 0, name: 0, keyHash: 0, keyPrefix: 0, source: 0, createdAt: 0, updatedAt: 0, lastUsedAt: 0 }, {
        ...settings,
        id: 0, name: 0, keyHash: 0, keyPrefix: 0, source: 0, createdAt: 0, updatedAt: 0, lastUsedAt: 0,
      });
    });

    test('update changes only the given settings, null clears, unknown name is not_found', async () => {
      const created = await keys.create(newKey('upd', { rpm: 10, models: ['a*'], metadata: { a: 1 } }));
      const disabled = await keys.update('upd', { enabled: false, tpm: 1000, defaults: { temperature: 0 } });
      assert.equal(disabled.enabled, false);
      assert.equal(disabled.tpm, 1000);
      assert.equal(disabled.rpm, 10);
      assert.deepEqual(disabled.models, ['a*']);
      assert.deepEqual(disabled.defaults, { temperature: 0 });
      assert.ok(disabled.updatedAt >= created.updatedAt);
      assert.deepEqual(disabled.createdAt, created.createdAt);

      const expiry = new Date('2030-01-01T00:00:00.000Z');
      const changed = await keys.update('upd', { enabled: true, rpm: null, models: null, expiresAt: expiry, metadata: { b: [2] } });
      assert.equal(changed.enabled, true);
      assert.equal(changed.rpm, null);
      assert.equal(changed.models, null);
      assert.deepEqual(changed.expiresAt, expiry);
      assert.deepEqual(changed.metadata, { b: [2] });
      assert.deepEqual(await keys.getByName('upd'), changed);
      assert.deepEqual(await keys.update('upd', {}), changed);

      await assert.rejects(keys.update('nope', { rpm: 1 }), isStorageError('not_found'));
      await assert.rejects(keys.update('nope', {}), isStorageError('not_found'));
    });

    test('endpoint grants are stored as JSON, replaced, emptied and cleared like models', async () => {
      const created = await keys.create(newKey('grants', { endpoints: ['POST /v1/fine_tuning/jobs'] }));
      assert.deepEqual(created.endpoints, ['POST /v1/fine_tuning/jobs']);
      const raw = await database.db.selectFrom('app_keys').select('endpoints').where('name', '=', 'grants').executeTakeFirstOrThrow();
      assert.equal(raw.endpoints, '["POST /v1/fine_tuning/jobs"]');
      const fingerprint = await keys.fingerprint();

      await new Promise((resolve) => setTimeout(resolve, 5)); // updated_at has millisecond resolution
      const replaced = await keys.update('grants', { endpoints: ['* /v1/evals*', 'GET /v1/models/*'] });
      assert.deepEqual(replaced.endpoints, ['* /v1/evals*', 'GET /v1/models/*']);
      assert.notEqual(await keys.fingerprint(), fingerprint, 'other instances notice the change');
      assert.deepEqual((await keys.list()).find((key) => key.name === 'grants')?.endpoints, replaced.endpoints);
      assert.deepEqual((await keys.update('grants', { rpm: 3 })).endpoints, replaced.endpoints, 'other patches keep them');
      assert.deepEqual((await keys.update('grants', { endpoints: [] })).endpoints, []);
      assert.equal((await keys.update('grants', { endpoints: null })).endpoints, null);
      assert.equal((await keys.getByName('grants'))?.endpoints, null);
    });

    test('replaceSecret rotates: the old hash stops matching, the new one matches', async () => {
      const created = await keys.create(newKey('rotate'));
      const next = secretFields();
      const rotated = await keys.replaceSecret('rotate', next.keyHash, next.keyPrefix);
      assert.equal(rotated.id, created.id);
      assert.equal(rotated.keyHash, next.keyHash);
      assert.equal(rotated.keyPrefix, next.keyPrefix);
      assert.equal(await keys.findByHash(created.keyHash), undefined);
      assert.equal((await keys.findByHash(next.keyHash))?.id, created.id);

      const other = await keys.create(newKey('rotate-other'));
      await assert.rejects(keys.replaceSecret('rotate', other.keyHash, other.keyPrefix), isStorageError('conflict'));
      await assert.rejects(keys.replaceSecret('nope', secretFields().keyHash, 'oa-x'), isStorageError('not_found'));
    });

    test('delete removes the key once', async () => {
      const created = await keys.create(newKey('doomed'));
      assert.equal(await keys.delete('doomed'), true);
      assert.equal(await keys.delete('doomed'), false);
      assert.equal(await keys.getById(created.id), undefined);
    });

    test('only the hash and prefix reach the database, never the secret', async () => {
      const { secret, keyHash, keyPrefix: prefix } = secretFields();
      await keys.create({ name: 'hashed', keyHash, keyPrefix: prefix, source: 'admin' });
      const raw = await sql<Record<string, unknown>>`select * from app_keys where name = ${'hashed'}`.execute(database.db);
      assert.equal(raw.rows.length, 1);
      const text = JSON.stringify(raw.rows[0]);
      assert.ok(text.includes(keyHash));
      assert.ok(!text.includes(secret), 'secret stored');
      assert.ok(!text.includes(secret.slice(prefix.length)), 'secret tail stored');

      await assert.rejects(keys.create({ name: 'plain', keyHash: secret, keyPrefix: prefix, source: 'cli' }), TypeError);
      await assert.rejects(keys.create({ name: 'plain', keyHash, keyPrefix: secret, source: 'cli' }), TypeError);
    });

    test('touchLastUsed records the latest time, never moves back, ignores unknown ids', async () => {
      const a = await keys.create(newKey('touch-a'));
      const b = await keys.create(newKey('touch-b'));
      const t1 = new Date('2030-05-01T10:00:00.000Z');
      const t2 = new Date('2030-05-01T10:00:01.500Z');
      await keys.touchLastUsed([
        { id: a.id, at: t2 },
        { id: a.id, at: t1 },
        { id: b.id, at: t1 },
        { id: 'key_unknown', at: t2 },
      ]);
      assert.deepEqual((await keys.getById(a.id))?.lastUsedAt, t2);
      assert.deepEqual((await keys.getById(b.id))?.lastUsedAt, t1);

      await keys.touchLastUsed([{ id: a.id, at: t1 }]);
      assert.deepEqual((await keys.getById(a.id))?.lastUsedAt, t2, 'an older flush must not win');
      await keys.touchLastUsed([]);
    });

    test('touchLastUsed handles more keys than one statement carries', async () => {
      const created = [];
      for (let i = 0; i < 450; i += 1) created.push(await keys.create(newKey(`bulk-${String(i).padStart(3, '0')}`)));
      const base = Date.parse('2031-01-01T00:00:00.000Z');
      await keys.touchLastUsed(created.map((key, i) => ({ id: key.id, at: new Date(base + i * 1000) })));
      const byId = new Map((await keys.list()).map((key) => [key.id, key]));
      created.forEach((key, i) => assert.equal(byId.get(key.id)?.lastUsedAt?.getTime(), base + i * 1000, key.name));
    });
  });

  describe(`${backend.name} upsertFromConfig`, () => {
    let database: TestDatabase;
    let keys: KeysRepository;
    before(async () => {
      database = await backend.open();
      keys = new KeysRepository(database);
    });
    after(async () => {
      await database.cleanup();
    });

    test('adds, updates and removes config keys and leaves other keys alone', async () => {
      const cliKey = await keys.create(newKey('from-cli', { rpm: 5 }));
      const one = configKey('cfg-one', { rpm: 10, models: ['gpt-*'] });
      const two = configKey('cfg-two', { metadata: { owner: 'ops' } });
      const gone = configKey('cfg-gone');
      await keys.upsertFromConfig([one, two, gone]);
      const first = new Map((await keys.list()).map((key) => [key.name, key]));
      assert.deepEqual([...first.keys()], ['cfg-gone', 'cfg-one', 'cfg-two', 'from-cli']);
      for (const name of ['cfg-one', 'cfg-two', 'cfg-gone']) assert.equal(first.get(name)?.source, 'config');
      assert.deepEqual(first.get('cfg-one')?.models, ['gpt-*']);

      await keys.touchLastUsed([{ id: first.get('cfg-one')?.id ?? '', at: new Date('2030-01-01T00:00:00.000Z') }]);
      const rotatedTwo = configKey('cfg-two'); // new secret, and metadata omitted → reset to null
      const three = configKey('cfg-three', { enabled: false });
      await keys.upsertFromConfig([{ ...one, rpm: 20 }, rotatedTwo, three]);
      const second = new Map((await keys.list()).map((key) => [key.name, key]));
      assert.deepEqual([...second.keys()], ['cfg-one', 'cfg-three', 'cfg-two', 'from-cli']);

      const updatedOne = second.get('cfg-one');
      assert.equal(updatedOne?.id, first.get('cfg-one')?.id, 'updates keep the id');
      assert.equal(updatedOne?.rpm, 20);
      assert.deepEqual(updatedOne?.lastUsedAt, new Date('2030-01-01T00:00:00.000Z'));
      assert.deepEqual(updatedOne?.createdAt, first.get('cfg-one')?.createdAt);
      assert.equal(second.get('cfg-two')?.keyHash, rotatedTwo.keyHash);
      assert.equal(second.get('cfg-two')?.metadata, null);
      assert.equal(second.get('cfg-three')?.enabled, false);
      assert.deepEqual(second.get('from-cli'), { ...cliKey });
      assert.equal(await keys.findByHash(gone.keyHash), undefined);
    });

    test('config sync writes endpoint grants, updates a changed list and resets an omitted one', async () => {
      await keys.upsertFromConfig([configKey('cfg-grants', { endpoints: ['POST /v1/fine_tuning/jobs'] })]);
      const first = await keys.getByName('cfg-grants');
      assert.deepEqual(first?.endpoints, ['POST /v1/fine_tuning/jobs']);
      const entry = { name: 'cfg-grants', keyHash: first!.keyHash, keyPrefix: first!.keyPrefix };

      await new Promise((resolve) => setTimeout(resolve, 5));
      await keys.upsertFromConfig([{ ...entry, endpoints: ['POST /v1/fine_tuning/jobs', 'GET /v1/evals*'] }]);
      const second = await keys.getByName('cfg-grants');
      assert.deepEqual(second?.endpoints, ['POST /v1/fine_tuning/jobs', 'GET /v1/evals*']);
      assert.ok(second!.updatedAt > first!.updatedAt, 'a changed list alone is an update');
      assert.equal(second?.id, first?.id);

      await keys.upsertFromConfig([entry]);
      assert.equal((await keys.getByName('cfg-grants'))?.endpoints, null);
    });

    test('an unchanged config leaves updated_at alone', async () => {
      const entries = [configKey('stable-1', { tpm: 7 }), configKey('stable-2')];
      await keys.upsertFromConfig(entries);
      const before = await keys.getByName('stable-1');
      await new Promise((resolve) => setTimeout(resolve, 5));
      await keys.upsertFromConfig(entries);
      assert.deepEqual(await keys.getByName('stable-1'), before);
    });

    test('a key renamed in config may keep its secret', async () => {
      const original = configKey('rename-old');
      await keys.upsertFromConfig([original]);
      await keys.upsertFromConfig([{ ...original, name: 'rename-new' }]);
      assert.equal(await keys.getByName('rename-old'), undefined);
      assert.equal((await keys.findByHash(original.keyHash))?.name, 'rename-new');
    });

    test('a config name taken by a CLI key, or declared twice, is a conflict and changes nothing', async () => {
      await keys.upsertFromConfig([configKey('keeper')]);
      const before = await keys.list();
      await keys.create(newKey('taken-by-cli'));
      const withCli = await keys.list();
      await assert.rejects(keys.upsertFromConfig([configKey('fresh'), configKey('taken-by-cli')]), (error: unknown) => {
        assert.ok(isStorageError('conflict')(error));
        assert.match((error as Error).message, /taken-by-cli/);
        return true;
      });
      assert.deepEqual(await keys.list(), withCli, 'the failed sync rolled back');
      await assert.rejects(keys.upsertFromConfig([configKey('twice'), configKey('twice')]), isStorageError('conflict'));
      assert.ok(before.every((key) => withCli.some((other) => other.id === key.id)));
    });

    test('an empty config removes every config key', async () => {
      await keys.upsertFromConfig([]);
      assert.ok((await keys.list()).every((key) => key.source !== 'config'));
    });
  });
}
