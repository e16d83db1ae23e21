import { conversationIdProblem, OWNER_SCOPE } from '../domain/conversation.js';
import { ConversationsRepository } from '../storage/conversations-repository.js';
import { CommandError, runCommand, withStore, type CommandIo, type Store } from './command.js';
import { noPositionals, onePositional, parseFlags, UsageError, type FlagSpec } from './flags.js';
import { formatTime, renderPairs, renderTable, truncate } from './table.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'key', value: 'NAME' },
  { name: 'owner' },
  { name: 'json' },
  { name: 'config', value: 'PATH', short: 'c' },
  { name: 'help', short: 'h' },
];

const USAGE = 'openai-api conversations list|show ID|delete ID (--key NAME | --owner) [--json]';

export const CONVERSATIONS_HELP = `openai-api conversations — what /api/chat remembers per key (conversation_id)

Usage:
  openai-api conversations list --key NAME        a key's live conversations, most recent first
  openai-api conversations show ID --key NAME     one conversation's turns, with their times
  openai-api conversations delete ID --key NAME   forget it (what a bot's "/reset" does)

  --key NAME     the app key the conversations belong to
  --owner        instead of --key: the conversations of callers without an app key
                 (the access tokens, or everyone when no keys are configured)
  --json         machine-readable output (list and show)
  --config PATH  the config whose database_url holds them

Expired conversations (memory_ttl after their last message) are not shown and are deleted by
the gateway's periodic sweep.
`;

const LIST_LIMIT = 1000;

/** Whose conversations the flags name: a key's id, or the owner's shared scope. */
async function ownerOf(flags: ReadonlyMap<string, string>, store: Store): Promise<string> {
  if (flags.has('owner')) return OWNER_SCOPE;
  const name = flags.get('key')!;
  const row = await store.keys.getByName(name);
  if (row === undefined) throw new CommandError(`no key named ${JSON.stringify(name)}`);
  return row.id;
}

function conversationId(text: string): string {
  const problem = conversationIdProblem(text);
  if (problem !== undefined) throw new UsageError(`conversation id ${problem}`);
  return text;
}

/** `openai-api conversations …`: exit 0 done, 1 could not be done (unknown key or id), 2 bad command line. */
export function conversationsCommand(argv: readonly string[], configPath: string | undefined, io: CommandIo): Promise<number> {
  return runCommand('conversations', io, async () => {
    const [action, ...rest] = argv;
    if (action === undefined || action === '--help' || action === '-h') return io.out(CONVERSATIONS_HELP);
    if (!['list', 'show', 'delete'].includes(action)) throw new UsageError(`unknown action ${JSON.stringify(action)} (${USAGE})`);
    const parsed = parseFlags(rest, FLAGS, 'run "openai-api conversations --help" for the options');
    const flags = parsed.flags;
    if (flags.has('help')) return io.out(CONVERSATIONS_HELP);
    if (flags.has('key') === flags.has('owner')) throw new UsageError(`name the conversations' owner with exactly one of --key NAME or --owner (${USAGE})`);
    if (flags.get('key')?.trim() === '') throw new UsageError('--key is empty: expected a key name');
    const id = action === 'list' ? (noPositionals(parsed, USAGE), undefined) : conversationId(onePositional(parsed, 'conversation id', USAGE));
    const json = flags.has('json');
    await withStore(flags.get('config') ?? configPath, io, async (store) => {
      const repository = new ConversationsRepository(store.database);
      const keyId = await ownerOf(flags, store);
      const now = new Date();
      if (action === 'list') {
        const rows = await repository.list(keyId, now, LIST_LIMIT);
        if (json) return io.out(`${JSON.stringify(rows.map((c) => ({ conversation_id: c.id, turns: c.turns, created_at: c.createdAt.toISOString(), last_at: c.lastAt.toISOString(), expires_at: c.expiresAt.toISOString() })), null, 2)}\n`);
        if (rows.length === 0) return io.out('No conversations.\n');
        return io.out(renderTable([{ header: 'CONVERSATION' }, { header: 'TURNS', align: 'right' }, { header: 'LAST MESSAGE' }, { header: 'EXPIRES' }], rows.map((c) => [truncate(c.id, 48), String(c.turns), formatTime(c.lastAt, ''), formatTime(c.expiresAt, '')])));
      }
      const ref = { keyId, conversationId: id! };
      if (action === 'delete') {
        if (!(await repository.delete(ref, now))) throw new CommandError(`no conversation ${JSON.stringify(id)} for this key`);
        return io.out(`Deleted conversation ${JSON.stringify(id)}.\n`);
      }
      const found = await repository.get(ref, now);
      if (found === undefined) throw new CommandError(`no conversation ${JSON.stringify(id)} for this key`);
      const { summary, turns } = found;
      if (json) {
        const view = { conversation_id: summary.id, created_at: summary.createdAt.toISOString(), last_at: summary.lastAt.toISOString(), expires_at: summary.expiresAt.toISOString(), turns: turns.map((t) => ({ seq: t.seq, prompt: t.prompt, answer: t.answer, asked_at: t.askedAt.toISOString(), answered_at: t.answeredAt.toISOString() })) };
        return io.out(`${JSON.stringify(view, null, 2)}\n`);
      }
      const head = renderPairs([
        ['conversation', JSON.stringify(summary.id)],
        ['turns', String(summary.turns)],
        ['started', formatTime(summary.createdAt, '')],
        ['last message', formatTime(summary.lastAt, '')],
        ['expires', formatTime(summary.expiresAt, '')],
      ]);
      // JSON strings: a prompt cannot forge lines of the listing.
      const body = turns.map((t) => `#${t.seq}  ${formatTime(t.askedAt, '')}\n  user:      ${JSON.stringify(t.prompt)}\n  assistant: ${JSON.stringify(t.answer)}\n`).join('');
      io.out(`${head}\n${body}`);
    });
  });
}
