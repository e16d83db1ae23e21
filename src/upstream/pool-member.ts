import { createHash } from 'node:crypto';
import { protocolOf, type UpstreamConfig, type UpstreamProtocol } from '../config/upstream-entry.js';
import { GlobSet } from '../domain/glob.js';
import { adapterFor, type ProviderAdapter } from './adapters/adapter.js';
import type { Choosable } from './balancer.js';
import { CircuitBreaker, KeyHealth, type CircuitSettings } from './health.js';
import { RecentErrors } from './recent-errors.js';
import { Upstream } from './upstream.js';

/**
 * How a key is shown in logs and state: its index and last four characters, never more. A key
 * shorter than 12 characters shows none (four would be too much of it).
 */
export function keyHint(secret: string | undefined): string {
  if (secret === undefined) return 'none';
  return secret.length >= 12 ? `…${secret.slice(-4)}` : '…';
}

/** One key of one upstream, with its health and load. */
export class KeySlot implements Choosable {
  readonly weight = 1;
  inFlight = 0;
  /** Since start. */
  requests = 0;
  errors = 0;
  readonly health = new KeyHealth();
  readonly hint: string;
  /**
   * Names the key in ownership records (the account that holds an object) without revealing it:
   * 16 hex digits of its SHA-256; null for a keyless upstream.
   */
  readonly fingerprint: string | null;
  /** The headers every request with this key carries (the entry's extras and the credential), built once. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly member: PoolMember,
    readonly index: number,
    readonly secret: string | undefined,
  ) {
    this.hint = keyHint(secret);
    this.fingerprint = secret === undefined ? null : createHash('sha256').update(secret).digest('hex').slice(0, 16);
    this.headers = member.adapter.keyHeaders(secret);
  }

  /** Log fields that identify the key without revealing it (`key` itself is a redacted log field). */
  get logFields(): { upstream: string; keyIndex: number; keyHint: string } {
    return { upstream: this.member.name, keyIndex: this.index, keyHint: this.hint };
  }
}

/** One upstream in the pool: its connection (undici Pool or ProxyAgent), keys, circuit and load. */
export class PoolMember implements Choosable {
  readonly name: string;
  readonly weight: number;
  /** The API this upstream speaks: a request in another is never sent here. */
  readonly protocol: UpstreamProtocol;
  inFlight = 0;
  readonly connection: Upstream;
  readonly adapter: ProviderAdapter;
  /** The entry's `models`; `.exact` are the names it can list. */
  readonly matcher: GlobSet;
  readonly circuit: CircuitBreaker;
  readonly keys: readonly KeySlot[];
  /** The last failed attempts (admin status; messages redacted). */
  readonly lastErrors: RecentErrors;
  private readonly byFingerprint = new Map<string, KeySlot>();
  private cursor = 0;

  constructor(
    readonly config: UpstreamConfig,
    circuit: CircuitSettings,
    connectTimeoutMs: number,
  ) {
    this.name = config.name;
    this.weight = config.weight;
    this.protocol = protocolOf(config.type);
    this.connection = new Upstream({ name: config.name, baseUrl: config.baseUrl, proxy: config.proxy, connectTimeoutMs });
    this.adapter = adapterFor(config, this.connection.basePath);
    this.matcher = new GlobSet(config.models);
    this.circuit = new CircuitBreaker(circuit);
    // A keyless upstream (e.g. a local Ollama) still has one slot, so health and load work the same.
    const secrets = config.apiKeys.length > 0 ? config.apiKeys : [undefined];
    this.keys = secrets.map((secret, index) => new KeySlot(this, index, secret));
    this.lastErrors = new RecentErrors(config.apiKeys);
    for (const key of this.keys) if (key.fingerprint !== null && !this.byFingerprint.has(key.fingerprint)) this.byFingerprint.set(key.fingerprint, key);
  }

  /** Whether this upstream can take the model at all (globs, then the adapter: Azure needs a deployment). */
  serves(model: string): boolean {
    return this.matcher.matches(model) && this.adapter.servesModel(model);
  }

  hasUsableKey(now: number): boolean {
    for (const key of this.keys) if (key.health.usable(now)) return true;
    return false;
  }

  /** When this upstream could next take a request: its circuit and its soonest key both allowing. */
  availableAt(now: number): number {
    let keyAt = Infinity;
    for (const key of this.keys) keyAt = Math.min(keyAt, key.health.availableAt(now));
    return Math.max(keyAt, this.circuit.availableAt(now));
  }

  /** The key with this fingerprint (an object's affinity names one), if it is still configured. */
  keyWith(fingerprint: string): KeySlot | undefined {
    return this.byFingerprint.get(fingerprint);
  }

  /** Where the next key scan starts, so equally loaded keys take turns. */
  get keyCursor(): number {
    return this.cursor;
  }

  /** Counts a request on `key` and moves the turn past it. */
  take(key: KeySlot): void {
    key.inFlight += 1;
    key.requests += 1;
    this.inFlight += 1;
    this.cursor = (key.index + 1) % this.keys.length;
  }

  release(key: KeySlot): void {
    key.inFlight -= 1;
    this.inFlight -= 1;
  }
}
