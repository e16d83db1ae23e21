/**
 * Conversations of /api/chat (issue 16), as every folder sees them: the route and the CLI
 * validate ids with these bounds, storage/ persists turns, conversations/ selects the history.
 * Pure types and constants; nothing here imports another folder.
 */

/** A conversation id is the bot's user or chat id: 1 to 128 characters. */
export const CONVERSATION_ID_MAX_LENGTH = 128;

/**
 * Who conversations belong to when the caller has no app key (the seed's access tokens, or
 * everyone in the open mode): one shared space, the owner's. Never a key id (those start `key_`).
 */
export const OWNER_SCOPE = '*owner';

/** Why `id` is not a conversation id, or undefined when it is one. */
export function conversationIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return 'must be a string';
  if (id.length === 0) return 'must not be empty';
  if (id.length > CONVERSATION_ID_MAX_LENGTH) return `must be at most ${CONVERSATION_ID_MAX_LENGTH} characters`;
  // Control characters would forge log lines and CLI output; no bot's user id has one.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(id)) return 'must not contain control characters';
  return undefined;
}

/** One exchange of a conversation: the user's prompt and the assistant's answer. */
export interface ConversationTurn {
  /** 1, 2, 3… in the order the turns were stored (gaps where old turns were dropped). */
  readonly seq: number;
  readonly prompt: string;
  readonly answer: string;
  /** When the prompt arrived. */
  readonly askedAt: Date;
  /** When the answer was complete (and stored). */
  readonly answeredAt: Date;
}

/** A conversation as lists show it. */
export interface ConversationSummary {
  readonly id: string;
  readonly turns: number;
  readonly createdAt: Date;
  readonly lastAt: Date;
  /** When it is forgotten unless another message comes first. */
  readonly expiresAt: Date;
}

/** How much a conversation remembers, after the owner's settings and the key's own are merged. */
export interface MemorySettings {
  /** Off: a conversation_id is recorded in usage, and nothing is stored or sent as history. */
  readonly enabled: boolean;
  /** Tokens of history sent with a prompt, at most. */
  readonly maxTokens: number;
  /** Turns remembered (stored and sent), at most. */
  readonly maxTurns: number;
  /** Seconds after its last message a conversation is forgotten. */
  readonly ttlSeconds: number;
}

/** The largest values the memory settings take, in config.json, on a key and in the CLI alike. */
export const MEMORY_BOUNDS = Object.freeze({
  maxTokens: 1_000_000,
  maxTurns: 1_000,
  /** 365 days, in seconds. */
  ttlSeconds: 31_536_000,
});
