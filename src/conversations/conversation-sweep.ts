import { OWNER_SCOPE } from '../domain/conversation.js';
import type { Logger } from '../observability/logger.js';
import { BatchedSweep } from '../storage/batched-sweep.js';
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
export class ConversationSweep extends BatchedSweep {
  constructor(repository: ConversationsRepository, options: ConversationSweepOptions) {
    super(
      () => ({
        deleteBatch: () => repository.deleteExpired(options.now?.() ?? new Date(), OWNER_SCOPE),
        doneMessage: 'expired conversations deleted',
        failedMessage: 'deleting expired conversations failed; the next pass tries again',
      }),
      { logger: options.logger, intervalMs: options.intervalMs ?? 600_000, firstDelayMs: options.firstDelayMs ?? 60_000, pauseMs: options.pauseMs ?? 100 },
    );
  }
}
