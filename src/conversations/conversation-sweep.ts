import { OWNER_SCOPE } from '../domain/conversation.js';
import type { Logger } from '../observability/logger.js';
import type { ConversationsRepository } from '../storage/conversations-repository.js';

export interface ConversationSweepOptions {
  logger: Logger;
  /** Between the end of one pass and the start of the next (default ten minutes). */
  intervalMs?: number;
  /** Before the first pass, so it does not compete with start-up (default one minute). */
  firstDelayMs?: number;
  /** Between two batches of a pass (default 100 ms), so requests get the database. */
  pauseMs?: number;
  now?: () => Date;
}

/**
 * Deletes conversations past their memory_ttl, and those of deleted app keys, off the request
 * path: a pass every interval, in small batches. Reads already skip expired conversations, so
 * the sweep only decides how long their text stays on disk.
 */
export class ConversationSweep {
  readonly #repository: ConversationsRepository;
  readonly #options: ConversationSweepOptions;
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<number> | undefined;
  #stopped = false;

  constructor(repository: ConversationsRepository, options: ConversationSweepOptions) {
    this.#repository = repository;
    this.#options = options;
  }

  start(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#schedule(this.#options.firstDelayMs ?? 60_000);
  }

  /** One pass now (or the one under way); resolves with how many conversations went. Failures are logged. */
  runOnce(): Promise<number> {
    this.#pass ??= this.#run().finally(() => (this.#pass = undefined));
    return this.#pass;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#pass;
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.runOnce().finally(() => {
        if (!this.#stopped) this.#schedule(this.#options.intervalMs ?? 600_000);
      });
    }, delayMs);
    this.#timer.unref();
  }

  async #run(): Promise<number> {
    let deleted = 0;
    try {
      while (!this.#stopped) {
        const count = await this.#repository.deleteExpired(this.#options.now?.() ?? new Date(), OWNER_SCOPE);
        if (count === 0) break;
        deleted += count;
        await new Promise((resolve) => setTimeout(resolve, this.#options.pauseMs ?? 100));
      }
    } catch (error) {
      this.#options.logger.warn({ err: (error as Error).message, deleted }, 'deleting expired conversations failed; the next pass tries again');
      return deleted;
    }
    if (deleted > 0) this.#options.logger.info({ deleted }, 'expired conversations deleted');
    return deleted;
  }
}
