import type { ConversationSummary, ConversationTurn, MemorySettings } from '../domain/conversation.js';
import { GatewayError } from '../errors/index.js';
import { countTokens } from '../metering/token-estimate.js';
import type { Logger } from '../observability/logger.js';
import type { ConversationRef, ConversationsRepository } from '../storage/conversations-repository.js';
import { selectHistory } from './history-window.js';
import { TurnQueue } from './turn-queue.js';

/** A conversation a request holds from reading its history until its answer is stored or it failed. */
export interface OpenConversation {
  /** The turns sent upstream before the new prompt, oldest first. */
  readonly history: readonly ConversationTurn[];
  /**
   * Stores the turn. A failure is logged, not thrown: the caller already has its answer, and
   * only the memory of this turn is lost.
   */
  remember(prompt: string, answer: string): Promise<void>;
  /** Lets the conversation's next turn in; call on every path (later calls do nothing). */
  release(): void;
}

/** The most conversations a list shows. */
export const LIST_LIMIT = 1000;

/**
 * Conversations of /api/chat (issue 16): their history, ordered turn by turn within this
 * instance (turn-queue.ts), stored per owner key (storage/conversations-repository.ts).
 */
export class Conversations {
  readonly #repository: ConversationsRepository;
  readonly #logger: Logger;
  readonly #queue = new TurnQueue();
  readonly #now: () => Date;

  constructor(repository: ConversationsRepository, logger: Logger, now: () => Date = () => new Date()) {
    this.#repository = repository;
    this.#logger = logger;
    this.#now = now;
  }

  /**
   * Waits for the conversation's earlier turns on this instance, then reads the history that fits
   * `settings` for `model` (counted with its tokenizer). The caller must `release()` it.
   */
  async open(ref: ConversationRef, settings: MemorySettings, model: string): Promise<OpenConversation> {
    const release = await this.#queue.acquire(queueKey(ref));
    const askedAt = this.#now();
    let turns: ConversationTurn[];
    try {
      turns = await this.#repository.recentTurns(ref, settings.maxTurns, askedAt);
    } catch (error) {
      release();
      throw new GatewayError('storage_unavailable', 'The conversation database is unavailable; try again shortly.', { cause: error });
    }
    const history = selectHistory(turns, settings, (text) => countTokens(text, model));
    const remember = async (prompt: string, answer: string): Promise<void> => {
      try {
        await this.#repository.append(ref, { prompt, answer, askedAt, answeredAt: this.#now() }, settings);
      } catch (error) {
        this.#logger.warn({ err: (error as Error).message }, 'storing a conversation turn failed; the answer was sent, the conversation will not remember it');
      }
    };
    return { history, remember, release };
  }

  /** A conversation of the owner with its turns; undefined when there is none (or it expired). */
  get(ref: ConversationRef): Promise<{ summary: ConversationSummary; turns: ConversationTurn[] } | undefined> {
    return this.#stored(this.#repository.get(ref, this.#now()));
  }

  /** The owner's live conversations, most recent first. */
  list(keyId: string): Promise<ConversationSummary[]> {
    return this.#stored(this.#repository.list(keyId, this.#now(), LIST_LIMIT));
  }

  /**
   * Forgets a conversation; false when the owner had none of that id. It takes its place in the
   * conversation's queue, so a turn under way on this instance is stored first and forgotten with
   * the rest, and turns sent after the reset start afresh.
   */
  async forget(ref: ConversationRef): Promise<boolean> {
    const release = await this.#queue.acquire(queueKey(ref));
    try {
      return await this.#stored(this.#repository.delete(ref, this.#now()));
    } finally {
      release();
    }
  }

  #stored<T>(work: Promise<T>): Promise<T> {
    return work.catch((error: unknown) => {
      throw new GatewayError('storage_unavailable', 'The conversation database is unavailable; try again shortly.', { cause: error });
    });
  }
}

/** One queue per conversation of one owner (NUL cannot occur in a key id). */
function queueKey(ref: ConversationRef): string {
  return `${ref.keyId}\u0000${ref.conversationId}`;
}
