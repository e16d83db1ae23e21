import type { IncomingHttpHeaders } from 'node:http';

const DEFAULT_FAILURES = 10;
const DEFAULT_WINDOW_MS = 60_000;
/** Addresses tracked at most: a flood from many addresses pushes out the oldest instead of growing memory. */
const DEFAULT_MAX_CLIENTS = 10_000;

/**
 * Wrong admin tokens at the console's sign-in, counted per client address: after `failures`
 * within `windowMs` of the first, that address is refused (429, Retry-After) until the window
 * ends — the right token included, or guessing would go on. Other addresses sign in as before,
 * and a successful sign-in clears its address's count. In memory, per instance.
 */
export class SignInLimiter {
  private readonly clients = new Map<string, { since: number; failures: number }>();
  private readonly failures: number;
  private readonly windowMs: number;
  private readonly maxClients: number;
  private readonly now: () => number;

  constructor(options: { failures?: number; windowMs?: number; maxClients?: number; now?: () => number } = {}) {
    this.failures = options.failures ?? DEFAULT_FAILURES;
    this.windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    this.maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
    this.now = options.now ?? Date.now;
  }

  /** Milliseconds until `address` may try again; 0 when it may now. */
  blockedFor(address: string): number {
    const entry = this.clients.get(address);
    if (entry === undefined) return 0;
    const left = entry.since + this.windowMs - this.now();
    if (left <= 0) {
      this.clients.delete(address);
      return 0;
    }
    return entry.failures >= this.failures ? left : 0;
  }

  failed(address: string): void {
    const now = this.now();
    const entry = this.clients.get(address);
    if (entry !== undefined && entry.since + this.windowMs > now) {
      entry.failures += 1;
      return;
    }
    this.clients.delete(address);
    while (this.clients.size >= this.maxClients) this.clients.delete(this.clients.keys().next().value!);
    this.clients.set(address, { since: now, failures: 1 });
  }

  succeeded(address: string): void {
    this.clients.delete(address);
  }
}

/** The last entry of a comma-separated header: the one the proxy next to us added. */
function lastOf(value: string | string[] | undefined): string | undefined {
  const joined = Array.isArray(value) ? value.join(',') : value;
  const last = joined?.split(',').at(-1)?.trim();
  return last === undefined || last === '' ? undefined : last;
}

/**
 * Who is signing in: the socket's peer, or — behind a trusted proxy (`trust_proxy`) — the last
 * X-Forwarded-For entry, which that proxy appended (earlier entries are the client's to forge).
 */
export function clientAddress(headers: IncomingHttpHeaders, socketAddress: string | undefined, trustProxy: boolean): string {
  return (trustProxy ? lastOf(headers['x-forwarded-for']) : undefined) ?? socketAddress ?? 'unknown';
}

/** Whether the browser reached us over https: TLS on this socket, or a trusted proxy saying so. */
export function cameOverHttps(headers: IncomingHttpHeaders, encrypted: boolean, trustProxy: boolean): boolean {
  return encrypted || (trustProxy && lastOf(headers['x-forwarded-proto'])?.toLowerCase() === 'https');
}
