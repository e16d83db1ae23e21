import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KeyStore } from '../../../src/auth/key-store.js';
import { generateKeySecret, hashKeySecret, keyPrefix } from '../../../src/auth/key-secret.js';
import { createLogger } from '../../../src/observability/logger.js';
import { KeysRepository } from '../../../src/storage/keys-repository.js';
import { storageBackends, type TestDatabase } from '../../helpers/databases.js';

const sqlite = storageBackends()[0]!;

describe('KeyStore reloads (real SQLite)', () => {
  let database: TestDatabase;
  let keys: KeysRepository;
  const forgotten: string[] = [];
  let store: KeyStore;

  before(async () => {
    database = await sqlite.open();
    keys = new KeysRepository(database);
    store = new KeyStore(keys, { refreshMs: 0, logger: createLogger('silent'), onLimitsChanged: (id) => forgotten.push(id) });
    await store.load();
  });
  after(() => database.cleanup());

  const create = async (name: string, rpm: number | null = null): Promise<{ id: string; secret: string }> => {
    const secret = generateKeySecret();
    const row = await keys.create({ name, keyHash: hashKeySecret(secret), keyPrefix: keyPrefix(secret), source: 'cli', rpm });
    return { id: row.id, secret };
  };

  it('reloads one key by id: created, rotated (the old hash is gone), deleted', async () => {
    const { id, secret } = await create('one');
    await store.reloadKey(id);
    assert.equal(store.byId(id)?.name, 'one');
    assert.equal(store.lookup(hashKeySecret(secret)), store.byId(id), 'found without a database read');
    const fresh = generateKeySecret();
    await keys.replaceSecret('one', hashKeySecret(fresh), keyPrefix(fresh));
    await store.reloadKey(id);
    assert.equal(store.lookup(hashKeySecret(fresh)), store.byId(id));
    assert.equal(await store.lookup(hashKeySecret(secret)), undefined, 'the old secret is unknown');
    await keys.delete('one');
    await store.reloadKey(id);
    assert.equal(store.byId(id), undefined);
    assert.deepEqual(forgotten, [id], 'a deleted key’s limit state is dropped');
  });

  it('drops limit state only for keys whose limits changed, whether reloaded by id or all at once', async () => {
    forgotten.length = 0;
    const a = await create('limited-a', 10);
    const b = await create('limited-b', 10);
    await store.load();
    assert.deepEqual(forgotten, [], 'new keys have no state to drop');
    await keys.update('limited-a', { rpm: 20 });
    await keys.update('limited-b', { enabled: false });
    await store.reloadKey(a.id);
    await store.reloadKey(b.id);
    assert.deepEqual(forgotten, [a.id]);
    await keys.update('limited-b', { rpm: 5 });
    await store.load();
    assert.deepEqual(forgotten, [a.id, b.id], 'the poll’s full load drops it too');
  });
});
