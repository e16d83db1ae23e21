import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { OWNER_SCOPE } from '../../../src/domain/conversation.js';
import { openDatabase, type Database } from '../../../src/storage/database.js';
import { ConversationsRepository, type NewTurn } from '../../../src/storage/conversations-repository.js';
import { KeysRepository } from '../../../src/storage/keys-repository.js';
import { storageBackends, type TestDatabase } from '../../helpers/databases.js';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const at = (seconds: number): Date => new Date(T0 + seconds * 1000);
const turn = (n: number, seconds = n): NewTurn => ({ prompt: `q${n}`, answer: `a${n}`, askedAt: at(seconds), answeredAt: at(seconds) });
const KEEP = { ttlSeconds: 3600, maxTurns: 100 };

for (const backend of storageBackends()) {
  describe(`conversations repository on ${backend.name}`, () => {
    let database: TestDatabase;
    let second: Database;
    let repository: ConversationsRepository;
    before(async () => {
      database = await backend.open();
      // A second connection to the same database: another gateway instance.
      second = await openDatabase(database.url);
      repository = new ConversationsRepository(database);
    });
    after(async () => {
      await second.close();
      await database.cleanup();
    });

    test('appends numbered turns and reads the newest ones back, oldest first, per owner', async () => {
      const ref = { keyId: 'key_a', conversationId: 'u1' };
      for (const n of [1, 2, 3]) assert.equal(await repository.append(ref, turn(n), KEEP), n);
      assert.deepEqual((await repository.recentTurns(ref, 2, at(10))).map((t) => [t.seq, t.prompt, t.answer]), [[2, 'q2', 'a2'], [3, 'q3', 'a3']]);
      assert.deepEqual(await repository.recentTurns({ keyId: 'key_b', conversationId: 'u1' }, 10, at(10)), [], 'another owner sees nothing');
      const found = await repository.get(ref, at(10));
      assert.equal(found?.summary.turns, 3);
      assert.equal(found?.summary.expiresAt.getTime(), at(3 + 3600).getTime(), 'expires ttl after the last message');
      assert.deepEqual((await repository.list('key_a', at(10), 10)).map((c) => [c.id, c.turns]), [['u1', 3]]);
    });

    test('concurrent appends from two instances never share a number, and history reads in order', async () => {
      const ref = { keyId: 'key_a', conversationId: 'busy' };
      // PostgreSQL: a second pool, as another instance has. SQLite: instances are processes (WAL locks
      // serialise them); a second connection in this one process would only block its event loop.
      const other = backend.name === 'postgres' ? new ConversationsRepository(second) : repository;
      const seqs = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? repository : other).append(ref, turn(i + 1, 1), KEEP)));
      assert.deepEqual([...seqs].sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i + 1));
      const read = await repository.recentTurns(ref, 100, at(10));
      assert.deepEqual(read.map((t) => t.seq), Array.from({ length: 12 }, (_, i) => i + 1));
    });

    test('keeps at most maxTurns turns', async () => {
      const ref = { keyId: 'key_a', conversationId: 'capped' };
      for (const n of [1, 2, 3, 4]) await repository.append(ref, turn(n), { ttlSeconds: 3600, maxTurns: 2 });
      assert.deepEqual((await repository.get(ref, at(10)))?.turns.map((t) => t.seq), [3, 4]);
    });

    test('an expired conversation is not read, and a new message starts it afresh', async () => {
      const ref = { keyId: 'key_a', conversationId: 'stale' };
      await repository.append(ref, turn(1), { ttlSeconds: 5, maxTurns: 100 });
      assert.equal((await repository.recentTurns(ref, 10, at(5))).length, 1);
      assert.deepEqual(await repository.recentTurns(ref, 10, at(6)), [], 'expired at last message + ttl');
      assert.equal(await repository.get(ref, at(6)), undefined);
      assert.equal(await repository.append(ref, turn(2, 100), KEEP), 1, 'numbered from 1 again');
      assert.deepEqual((await repository.get(ref, at(101)))?.turns.map((t) => t.prompt), ['q2']);
    });

    test('delete forgets one owner’s conversation only', async () => {
      const mine = { keyId: 'key_a', conversationId: 'both' };
      const theirs = { keyId: 'key_b', conversationId: 'both' };
      await repository.append(mine, turn(1), KEEP);
      await repository.append(theirs, turn(1), KEEP);
      assert.equal(await repository.delete(mine, at(2)), true);
      assert.equal(await repository.delete(mine, at(2)), false);
      assert.equal((await repository.get(theirs, at(2)))?.turns.length, 1);
    });

    test('deleteExpired removes expired conversations and those of deleted keys, never the owner scope’s', async () => {
      const keys = new KeysRepository(database);
      const live = await keys.create({ name: 'live', keyHash: 'a'.repeat(64), keyPrefix: 'oa-live', source: 'cli' });
      const sweepAt = at(50_000);
      await repository.append({ keyId: live.id, conversationId: 'keep' }, turn(1, 49_000), KEEP);
      await repository.append({ keyId: live.id, conversationId: 'old' }, turn(1, 1), { ttlSeconds: 10, maxTurns: 100 });
      await repository.append({ keyId: OWNER_SCOPE, conversationId: 'owner' }, turn(1, 49_000), KEEP);
      await repository.append({ keyId: 'key_deleted', conversationId: 'orphan' }, turn(1, 49_000), KEEP);
      let deleted = 0;
      for (let n = await repository.deleteExpired(sweepAt, OWNER_SCOPE, 2); n > 0; n = await repository.deleteExpired(sweepAt, OWNER_SCOPE, 2)) deleted += n;
      assert.ok(deleted >= 2);
      const left = await database.db.selectFrom('conversations').select(['key_id', 'conversation_id']).execute();
      assert.deepEqual(left.map((row) => row.conversation_id).sort(), ['keep', 'owner']);
      const orphanTurns = await database.db.selectFrom('conversation_turns').select('seq').where('key_id', 'in', ['key_deleted']).execute();
      assert.deepEqual(orphanTurns, []);
      const oldTurns = await database.db.selectFrom('conversation_turns').select('seq').where('conversation_id', '=', 'old').execute();
      assert.deepEqual(oldTurns, []);
    });
  });
}
