/**
 * Health of upstreams and their keys, driven by an injected clock (`now` in ms) so the state
 * machines are testable without waiting.
 */

const BUCKETS = 10;

/** Requests and errors over the last `windowMs`, in ten buckets: fixed memory, O(1) to record. */
export class SlidingWindow {
  private readonly epochs = new Float64Array(BUCKETS).fill(-1);
  private readonly requests = new Uint32Array(BUCKETS);
  private readonly errors = new Uint32Array(BUCKETS);
  private readonly bucketMs: number;

  constructor(readonly windowMs: number) {
    this.bucketMs = Math.max(1, windowMs / BUCKETS);
  }

  record(now: number, error: boolean): void {
    const epoch = Math.floor(now / this.bucketMs);
    const slot = epoch % BUCKETS;
    if (this.epochs[slot] !== epoch) {
      this.epochs[slot] = epoch;
      this.requests[slot] = 0;
      this.errors[slot] = 0;
    }
    this.requests[slot]! += 1;
    if (error) this.errors[slot]! += 1;
  }

  totals(now: number): { requests: number; errors: number } {
    const current = Math.floor(now / this.bucketMs);
    let requests = 0;
    let errors = 0;
    for (let slot = 0; slot < BUCKETS; slot++) {
      const epoch = this.epochs[slot]!;
      if (epoch > current - BUCKETS && epoch <= current) {
        requests += this.requests[slot]!;
        errors += this.errors[slot]!;
      }
    }
    return { requests, errors };
  }

  clear(): void {
    this.epochs.fill(-1);
  }
}

export interface CircuitSettings {
  /** Open when errors / requests reaches this ratio… */
  errorRatio: number;
  /** …over at least this many requests in the window. */
  minRequests: number;
  windowMs: number;
  /** How long an open circuit refuses requests before one half-open probe. */
  openMs: number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';
/** success: the upstream answered (any status below 500, 429 included); failure: 5xx, connect error or timeout; neutral: no verdict (the client left). */
export type Outcome = 'success' | 'failure' | 'neutral';

/**
 * closed → (error ratio ≥ threshold over ≥ min requests in the window) → open
 * open → (openMs elapsed) → half-open: exactly one probe request passes
 * half-open → probe succeeds → closed (window cleared); probe fails → open again;
 * a probe without verdict frees the slot for the next probe.
 */
export class CircuitBreaker {
  private current: CircuitState = 'closed';
  private openUntil = 0;
  private probing = false;
  readonly window: SlidingWindow;

  constructor(private readonly settings: CircuitSettings) {
    this.window = new SlidingWindow(settings.windowMs);
  }

  /** Whether a request may be sent now (without taking the half-open probe slot). */
  canPass(now: number): boolean {
    if (this.current === 'closed') return true;
    if (this.probing) return false;
    return this.current === 'half-open' || now >= this.openUntil;
  }

  /** Takes the pass canPass granted; true when this request is the half-open probe. */
  enter(now: number): boolean {
    if (this.current === 'closed') return false;
    if (this.current === 'open' && now < this.openUntil) return false;
    this.current = 'half-open';
    this.probing = true;
    return true;
  }

  /** Records one attempt's outcome; returns the transition it caused, if any. */
  record(outcome: Outcome, probe: boolean, now: number): 'opened' | 'closed' | undefined {
    if (outcome !== 'neutral') this.window.record(now, outcome === 'failure');
    if (probe) {
      this.probing = false;
      if (outcome === 'success') {
        this.current = 'closed';
        this.window.clear();
        return 'closed';
      }
      if (outcome === 'failure') return this.open(now);
      return undefined;
    }
    if (this.current !== 'closed' || outcome !== 'failure') return undefined;
    const { requests, errors } = this.window.totals(now);
    if (requests >= this.settings.minRequests && errors / requests >= this.settings.errorRatio) return this.open(now);
    return undefined;
  }

  /** The state as a report shows it: an open circuit whose pause is over is half-open (the next request probes). */
  state(now: number): { state: CircuitState; until: number | undefined } {
    if (this.current === 'open' && now >= this.openUntil) return { state: 'half-open', until: undefined };
    return { state: this.current, until: this.current === 'open' ? this.openUntil : undefined };
  }

  /** When a request could next pass: now if it can, the end of the pause if open, never while a probe is out. */
  availableAt(now: number): number {
    if (this.canPass(now)) return now;
    return this.probing ? Infinity : this.openUntil;
  }

  private open(now: number): 'opened' {
    this.current = 'open';
    this.openUntil = now + this.settings.openMs;
    this.window.clear();
    return 'opened';
  }
}

/** One upstream key's standing: usable, resting after a 429, or set aside until reload. */
export class KeyHealth {
  private coolingUntil = 0;
  private disabled: { reason: string; at: number } | undefined;

  usable(now: number): boolean {
    return this.disabled === undefined && now >= this.coolingUntil;
  }

  /** Rests the key for `ms` (a longer rest already running is kept). */
  coolFor(now: number, ms: number): void {
    this.coolingUntil = Math.max(this.coolingUntil, now + ms);
  }

  disable(reason: string, now: number): boolean {
    if (this.disabled) return false;
    this.disabled = { reason, at: now };
    return true;
  }

  availableAt(now: number): number {
    if (this.disabled) return Infinity;
    return Math.max(now, this.coolingUntil);
  }

  status(now: number): { status: 'healthy' } | { status: 'cooling'; until: number } | { status: 'disabled'; reason: string; at: number } {
    if (this.disabled) return { status: 'disabled', ...this.disabled };
    if (now < this.coolingUntil) return { status: 'cooling', until: this.coolingUntil };
    return { status: 'healthy' };
  }
}
