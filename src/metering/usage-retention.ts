import type { Logger } from '../observability/logger.js';
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
export class UsageRetention {
  readonly #usage: UsageRepository;
  readonly #options: UsageRetentionOptions;
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<number> | undefined;
  #stopped = false;
  /** Ends the pause of a running pass at once when the job stops. */
  #wake: (() => void) | undefined;

  constructor(usage: UsageRepository, options: UsageRetentionOptions) {
    this.#usage = usage;
    this.#options = options;
  }

  start(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#schedule(this.#options.firstDelayMs ?? 60_000);
  }

  /**
   * One pass now (or the one under way): deletes every raw record past the retention, batch by
   * batch, and resolves with how many went. A failure is logged and ends the pass; the next pass
   * tries again.
   */
  runOnce(): Promise<number> {
    this.#pass ??= this.#run().finally(() => (this.#pass = undefined));
    return this.#pass;
  }

  /** Stops the timer and a pass under way after its current statement; resolves when it has. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wake?.();
    await this.#pass;
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.runOnce().finally(() => {
        if (!this.#stopped) this.#schedule(this.#options.intervalMs ?? HOUR_MS);
      });
    }, delayMs);
    this.#timer.unref();
  }

  async #run(): Promise<number> {
    const days = this.#options.retentionDays();
    if (days <= 0 || this.#stopped) return 0;
    const now = (this.#options.now?.() ?? new Date()).getTime();
    const before = new Date(Math.floor((now - days * DAY_MS) / HOUR_MS) * HOUR_MS);
    let deleted = 0;
    try {
      while (!this.#stopped) {
        const count = await this.#usage.deleteRawBefore(before, this.#options.batchSize);
        if (count === 0) break;
        deleted += count;
        await this.#pause(this.#options.pauseMs ?? 100);
      }
    } catch (error) {
      this.#options.logger.warn({ err: (error as Error).message, deleted }, 'deleting usage records past usage_retention failed; the next pass tries again');
      return deleted;
    }
    if (deleted > 0) this.#options.logger.info({ deleted, before: before.toISOString() }, 'usage records past usage_retention deleted');
    return deleted;
  }

  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    }).finally(() => (this.#wake = undefined));
  }
}
