import type { Logger } from '../observability/logger.js';

/** One pass of a sweep: what it deletes and how it says so. */
export interface SweepPass {
  /** Deletes one batch; resolves with how many rows went (0 ends the pass). */
  deleteBatch(): Promise<number>;
  /** Logged (info) with `deleted` and `fields` when a pass deleted anything. */
  readonly doneMessage: string;
  /** Logged (warn) with the error and what was deleted before it. */
  readonly failedMessage: string;
  readonly fields?: Record<string, unknown>;
}

export interface BatchedSweepTiming {
  logger: Logger;
  /** Between the end of one pass and the start of the next. */
  intervalMs: number;
  /** Before the first pass, so it does not compete with start-up. */
  firstDelayMs: number;
  /** Between two batches of a pass, so the request path gets the database (on SQLite, the event loop too). */
  pauseMs: number;
}

/**
 * Deletes rows in the background, off the request path: a pass every interval, each in small
 * batches with a pause between them, so no statement holds the database for long. `nextPass`
 * says what a pass deletes, read anew each time (settings may have been reloaded); undefined
 * skips the pass. A failure is logged and ends the pass; the next one tries again.
 */
export class BatchedSweep {
  readonly #nextPass: () => SweepPass | undefined;
  readonly #timing: BatchedSweepTiming;
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<number> | undefined;
  #stopped = false;
  /** Ends the pause of a running pass at once when the sweep stops. */
  #wake: (() => void) | undefined;

  constructor(nextPass: () => SweepPass | undefined, timing: BatchedSweepTiming) {
    this.#nextPass = nextPass;
    this.#timing = timing;
  }

  start(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#schedule(this.#timing.firstDelayMs);
  }

  /** One pass now (or the one under way); resolves with how many rows went. */
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
        if (!this.#stopped) this.#schedule(this.#timing.intervalMs);
      });
    }, delayMs);
    this.#timer.unref();
  }

  async #run(): Promise<number> {
    const pass = this.#stopped ? undefined : this.#nextPass();
    if (pass === undefined) return 0;
    let deleted = 0;
    try {
      while (!this.#stopped) {
        const count = await pass.deleteBatch();
        if (count === 0) break;
        deleted += count;
        await this.#pause(this.#timing.pauseMs);
      }
    } catch (error) {
      this.#timing.logger.warn({ err: (error as Error).message, deleted }, pass.failedMessage);
      return deleted;
    }
    if (deleted > 0) this.#timing.logger.info({ deleted, ...pass.fields }, pass.doneMessage);
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
