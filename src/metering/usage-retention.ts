import type { Logger } from '../observability/logger.js';
import { BatchedSweep } from '../storage/batched-sweep.js';
import type { UsageRepository } from '../storage/usage-repository.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface UsageRetentionOptions {
  /** Days of raw records to keep, read at every pass so a reload applies; 0 keeps them forever. */
  retentionDays: () => number;
  logger: Logger;
  /** Between the end of one pass and the start of the next (default one hour). */
  intervalMs?: number;
  /** Before the first pass, so it does not compete with start-up (default one minute). */
  firstDelayMs?: number;
  /** Rows per DELETE statement (default: the repository's, DELETE_BATCH). */
  batchSize?: number;
  /** Between two statements of a pass, so the usage writer and readers get the database (default 100 ms). */
  pauseMs?: number;
  now?: () => Date;
}

/**
 * Deletes raw usage records older than `usage_retention` days, off the request path: a pass runs
 * every interval and deletes in small batches with a pause between them, so no statement holds
 * the database for long (on SQLite a statement also holds the event loop). Whole hours only, so
 * an hour's raw rows are all there or all gone; the hourly rollup is never touched, so reports
 * and budgets keep counting what was deleted.
 */
export class UsageRetention extends BatchedSweep {
  constructor(usage: UsageRepository, options: UsageRetentionOptions) {
    super(
      () => {
        const days = options.retentionDays();
        if (days <= 0) return undefined;
        const now = (options.now?.() ?? new Date()).getTime();
        const before = new Date(Math.floor((now - days * DAY_MS) / HOUR_MS) * HOUR_MS);
        return {
          deleteBatch: () => usage.deleteRawBefore(before, options.batchSize),
          doneMessage: 'usage records past usage_retention deleted',
          failedMessage: 'deleting usage records past usage_retention failed; the next pass tries again',
          fields: { before: before.toISOString() },
        };
      },
      { logger: options.logger, intervalMs: options.intervalMs ?? HOUR_MS, firstDelayMs: options.firstDelayMs ?? 60_000, pauseMs: options.pauseMs ?? 100 },
    );
  }
}
