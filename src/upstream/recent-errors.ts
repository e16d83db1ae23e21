import type { UpstreamErrorReport } from '../admin/console-types.js';
import { redactSecrets } from './redact.js';

const MAX_MESSAGE = 300;

/**
 * The last few failed attempts of one upstream, newest first, for the console's Upstreams page
 * (GET /admin/status). Fixed memory; every message passes redactSecrets with the upstream's own
 * keys first, so no key leaves here even when a transport error or an upstream echoes one.
 */
export class RecentErrors {
  private readonly ring: UpstreamErrorReport[] = [];

  constructor(
    private readonly secrets: readonly string[],
    private readonly capacity = 10,
  ) {}

  add(at: number, keyIndex: number, status: number | null, code: string | null, message: string): void {
    const entry = { time: new Date(at).toISOString(), status, code, message: redactSecrets(message, this.secrets).slice(0, MAX_MESSAGE), keyIndex };
    this.ring.unshift(entry);
    if (this.ring.length > this.capacity) this.ring.pop();
  }

  latest(): UpstreamErrorReport[] {
    return this.ring.map((entry) => ({ ...entry }));
  }
}
