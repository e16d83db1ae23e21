import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CommandIo } from '../../src/cli/command.js';
import { conversationsCommand } from '../../src/cli/conversations-command.js';
import { keysCommand } from '../../src/cli/keys-command.js';
import { OWNER_SCOPE } from '../../src/domain/conversation.js';
import { ConversationsRepository } from '../../src/storage/conversations-repository.js';
import { KeysRepository } from '../../src/storage/keys-repository.js';
import { storageBackends, type TestDatabase } from '../helpers/databases.js';
import { tempConfigDir } from '../helpers/gateway.js';

/** The command as `openai-api` runs it, in this process: its output, errors and exit code. */
async function run(command: typeof conversationsCommand, argv: string[], configPath: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CommandIo = { out: (text) => void (out += text), err: (text) => void (err += text), confirm: undefined };
  const code = await command(argv, configPath, io);
  return { code, out, err };
}

const KEEP = { ttlSeconds: 3600, maxTurns: 100 };

for (const backend of storageBackends()) {
  describe(`openai-api conversations on ${backend.name}`, () => {
    let database: TestDatabase;
    let config: string;
    let repository: ConversationsRepository;
    let botId: string;

    before(async () => {
      database = await backend.open();
      config = join(tempConfigDir({ database_url: database.url }), 'config.json');
      repository = new ConversationsRepository(database);
      const keys = new KeysRepository(database);
      botId = (await keys.create({ name: 'bot', keyHash: 'b'.repeat(64), keyPrefix: 'oa-bot', source: 'cli' })).id;
      await keys.create({ name: 'other', keyHash: 'c'.repeat(64), keyPrefix: 'oa-other', source: 'cli' });
      const now = Date.now();
      const turn = (n: number) => ({ prompt: `question ${n}\nwith a second line`, answer: `answer ${n}`, askedAt: new Date(now + n), answeredAt: new Date(now + n) });
      await repository.append({ keyId: botId, conversationId: 'wx-1' }, turn(1), KEEP);
      await repository.append({ keyId: botId, conversationId: 'wx-1' }, turn(2), KEEP);
      await repository.append({ keyId: botId, conversationId: 'wx-2' }, turn(3), KEEP);
      await repository.append({ keyId: OWNER_SCOPE, conversationId: 'seed-user' }, turn(4), KEEP);
    });
    after(() => database.cleanup());

    test('list shows a key’s conversations, most recent first', async () => {
      const { code, out } = await run(conversationsCommand, ['list', '--key', 'bot'], config);
      assert.equal(code, 0);
      assert.ok(out.indexOf('wx-2') < out.indexOf('wx-1') && out.indexOf('wx-1') >= 0, out);
      const json = await run(conversationsCommand, ['list', '--key', 'bot', '--json'], config);
      assert.deepEqual((JSON.parse(json.out) as Array<{ conversation_id: string; turns: number }>).map((c) => [c.conversation_id, c.turns]), [['wx-2', 1], ['wx-1', 2]]);
      assert.equal((await run(conversationsCommand, ['list', '--key', 'other'], config)).out, 'No conversations.\n');
      assert.match((await run(conversationsCommand, ['list', '--owner'], config)).out, /seed-user/);
    });

    test('show prints the turns with their times, one line each even when a prompt has line breaks', async () => {
      const { code, out } = await run(conversationsCommand, ['show', 'wx-1', '--key', 'bot'], config);
      assert.equal(code, 0);
      assert.match(out, /#1 .*\n {2}user: {6}"question 1\\nwith a second line"\n {2}assistant: "answer 1"\n#2 /);
      const json = JSON.parse((await run(conversationsCommand, ['show', 'wx-1', '--key', 'bot', '--json'], config)).out) as { turns: Array<{ prompt: string }> };
      assert.deepEqual(json.turns.map((t) => t.prompt), ['question 1\nwith a second line', 'question 2\nwith a second line']);
      const elsewhere = await run(conversationsCommand, ['show', 'wx-1', '--key', 'other'], config);
      assert.equal(elsewhere.code, 1, 'another key has no such conversation');
      assert.match(elsewhere.err, /no conversation "wx-1"/);
    });

    test('delete forgets one conversation of one key', async () => {
      assert.equal((await run(conversationsCommand, ['delete', 'wx-2', '--key', 'other'], config)).code, 1);
      const { code, out } = await run(conversationsCommand, ['delete', 'wx-2', '--key', 'bot'], config);
      assert.equal(code, 0);
      assert.match(out, /Deleted conversation "wx-2"/);
      assert.equal(await repository.get({ keyId: botId, conversationId: 'wx-2' }, new Date()), undefined);
      assert.equal((await run(conversationsCommand, ['delete', 'wx-2', '--key', 'bot'], config)).code, 1);
    });

    test('bad command lines exit 2 with a reason; an unknown key exits 1', async () => {
      for (const argv of [['list'], ['list', '--key', 'bot', '--owner'], ['show', '--key', 'bot'], ['show', 'x'.repeat(129), '--key', 'bot'], ['wipe', '--key', 'bot'], ['list', '--key', 'bot', 'extra']]) {
        const { code, err } = await run(conversationsCommand, argv, config);
        assert.equal(code, 2, `${argv.join(' ')}: ${err}`);
        assert.match(err, /^openai-api conversations: /);
      }
      const unknown = await run(conversationsCommand, ['list', '--key', 'nobody'], config);
      assert.equal(unknown.code, 1);
      assert.match(unknown.err, /no key named "nobody"/);
    });

    test('keys create and update carry the memory settings', async () => {
      const created = await run(keysCommand, ['create', 'memo', '--memory', 'off', '--memory-max-tokens', '800', '--memory-max-turns', '5', '--memory-ttl', '3600'], config);
      assert.equal(created.code, 0, created.err);
      const keys = new KeysRepository(database);
      const row = await keys.getByName('memo');
      assert.deepEqual([row?.memory, row?.memoryMaxTokens, row?.memoryMaxTurns, row?.memoryTtl], [false, 800, 5, 3600]);
      assert.match((await run(keysCommand, ['show', 'memo'], config)).out, /memory +off, max_tokens 800, max_turns 5, ttl 3600s/);
      assert.equal((await run(keysCommand, ['update', 'memo', '--memory', 'on', '--clear', 'memory-ttl'], config)).code, 0);
      const updated = await keys.getByName('memo');
      assert.deepEqual([updated?.memory, updated?.memoryTtl], [true, null]);
      const bad = await run(keysCommand, ['update', 'memo', '--memory', 'maybe'], config);
      assert.equal(bad.code, 2);
      assert.match(bad.err, /--memory is "maybe": expected on or off/);
    });
  });
}
