import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import type { PoolSettings, UpstreamConfig } from '../config/upstream-entry.js';
import { GatewayError } from '../errors/index.js';
import type { Logger } from '../observability/logger.js';
import { chooseWeighted } from './balancer.js';
import type { UpstreamAnswer, UpstreamClient, UpstreamRequest } from './client.js';
import { upstreamFailure, type TimeoutSettings } from './failure.js';
import type { Outcome } from './health.js';
import { PoolMember, type KeySlot } from './pool-member.js';
import { memberReport, type UpstreamStateReport } from './pool-state.js';
import { peekBody } from './replay-body.js';
import { backoffDelay, failureName, isKeyFaultStatus, isQuotaExhausted, isRetryableError, isRetryableStatus, isUpstreamFaultStatus, MAX_RETRY_WAIT_MS, parseRetryAfter } from './retry.js';

export type { KeyStateReport, UpstreamStateReport } from './pool-state.js';

/** A request for the pool; the same shape the routes send to any UpstreamClient. */
export type PoolRequest = UpstreamRequest;

export interface PoolResponse extends UpstreamAnswer {
  /** The `include_usage` setting of the upstream that answered. */
  includeUsage: boolean;
}

export interface PoolOptions {
  logger: Logger;
  timeouts: TimeoutSettings;
  /** Clock for cool-downs and circuits (ms); tests move it by hand. */
  now?: () => number;
  /** Waits between attempts; resolves early or rejects when the signal aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Source of randomness for balancing and jitter, in [0, 1). */
  random?: () => number;
}

/** What one attempt came to. */
type Attempt =
  | { kind: 'final'; response: Dispatcher.ResponseData }
  | { kind: 'retryable'; response: Dispatcher.ResponseData; keyFault: boolean; upstreamFault: boolean; retryAfterMs: number | undefined }
  | { kind: 'error'; error: unknown; retryable: boolean };

/** What a request already tried: keys are avoided on the next attempt, upstreams that failed as a whole too. */
interface Tried {
  keys: KeySlot[];
  members: PoolMember[];
}

const MODEL_CACHE_LIMIT = 1024;
// A 429 body is read to tell "rate limited" from "out of quota"; they are a few hundred bytes.
const PEEK_LIMIT = 64 * 1024;
const MAX_COOLDOWN_MS = 60 * 60 * 1000;
const NOTHING_TRIED: readonly PoolMember[] = [];

const defaultSleep = async (ms: number, signal: AbortSignal): Promise<void> => {
  await delay(ms, undefined, { signal }).catch(() => undefined);
};

/**
 * Several upstreams (and several keys each) behind one `send()`: routes by model, balances by
 * weight and load, retries what is safe to retry before anything reached the client, rests
 * rate-limited keys, sets aside refused ones, and stops sending to an upstream whose circuit opened.
 */
export class UpstreamPool implements UpstreamClient {
  private readonly members: PoolMember[];
  private readonly byModel = new Map<string, PoolMember[]>();
  private readonly allSecrets: readonly string[];
  private readonly logger: Logger;
  private readonly timeouts: TimeoutSettings;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly random: () => number;

  constructor(
    upstreams: readonly UpstreamConfig[],
    private readonly settings: PoolSettings,
    options: PoolOptions,
  ) {
    if (upstreams.length === 0) throw new Error('the upstream pool needs at least one upstream');
    const names = new Set(upstreams.map((upstream) => upstream.name));
    if (names.size !== upstreams.length) throw new Error('upstream names must be unique');
    this.logger = options.logger;
    this.timeouts = options.timeouts;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
    const circuit = { errorRatio: settings.circuitErrorRatio, minRequests: settings.circuitMinRequests, windowMs: settings.circuitWindowMs, openMs: settings.circuitOpenMs };
    this.members = upstreams.map((upstream) => new PoolMember(upstream, circuit, options.timeouts.connectTimeoutMs));
    this.allSecrets = upstreams.flatMap((upstream) => upstream.apiKeys);
  }

  async send(request: PoolRequest): Promise<PoolResponse> {
    const { model, signal } = request;
    const pinned = request.affinity === undefined ? undefined : this.pinned(request.affinity, model);
    const candidates = pinned !== undefined ? [pinned.member] : model === undefined ? this.members : this.candidatesFor(model);
    if (candidates.length === 0) throw new GatewayError('model_not_found', `The model \`${model!.slice(0, 200)}\` is not served by this gateway.`);
    const pathname = model === undefined ? request.path.split('?')[0]! : undefined;
    if (pathname !== undefined && !candidates.some((member) => member.adapter.servesWithoutModel(pathname))) {
      throw new GatewayError('model_not_found', `No upstream can serve ${pathname} without knowing the model; send the "model" field.`);
    }
    // A stream is read as it is sent: there is nothing left to send a second time.
    const maxAttempts = request.body instanceof Readable ? 1 : this.settings.maxAttempts;
    const tried: Tried = { keys: [], members: [] };
    let next: KeySlot | undefined = pinned?.key !== undefined && pinned.key.health.usable(this.now()) ? pinned.key : undefined;
    let wait = 0;
    for (let attempt = 1; ; attempt++) {
      if (wait > 0) await this.pause(wait, signal);
      if (signal.aborted) throw cancelled(signal);
      const slot = next ?? (await this.slotFor(candidates, pathname, tried, signal));
      const result = await this.attempt(slot, request, attempt);
      if (result.kind === 'final') return this.answer(slot, result.response, attempt);
      const giveUp = attempt >= maxAttempts || signal.aborted || (result.kind === 'error' && !result.retryable);
      const plan = giveUp ? undefined : this.planRetry(candidates, pathname, tried, slot, result, attempt);
      const fields = { ...slot.logFields, attempt, ...(result.kind === 'error' ? { error: failureName(result.error) } : { status: result.response.statusCode }) };
      if (plan === undefined) {
        this.logger.info(fields, 'upstream attempt failed; not retrying');
        if (result.kind === 'error') throw signal.aborted ? cancelled(signal) : upstreamFailure(result.error, slot.member.name, this.timeouts);
        return this.answer(slot, result.response, attempt);
      }
      this.logger.info({ ...fields, retryInMs: Math.round(plan.wait) }, 'upstream attempt failed; retrying');
      if (result.kind === 'retryable') this.discard(slot, result.response);
      wait = plan.wait;
      next = plan.wait === 0 ? plan.next : undefined;
    }
  }

  /** The member (and key) named by an object's affinity, when it still exists and serves the model. */
  private pinned(affinity: { upstream: string; upstreamKey: string | null }, model: string | undefined): { member: PoolMember; key: KeySlot | undefined } | undefined {
    const member = this.members.find((candidate) => candidate.name === affinity.upstream);
    if (member === undefined || (model !== undefined && !member.serves(model))) return undefined;
    const key = affinity.upstreamKey === null ? undefined : member.keys.find((slot) => slot.fingerprint === affinity.upstreamKey);
    return { member, key };
  }

  /** Whether some upstream serves this (alias-resolved) model. */
  serves(model: string): boolean {
    return this.candidatesFor(model).length > 0;
  }

  /** Names of explicit (non-glob) models from config, plus Azure deployment model names — those actually served. */
  configuredModels(): string[] {
    const names = new Set<string>();
    for (const member of this.members) {
      for (const name of member.matcher.exact) names.add(name);
      for (const name of Object.keys(member.config.deployments)) names.add(name);
    }
    return [...names].filter((name) => this.serves(name));
  }

  /** Whether every upstream that may serve this model lets the gateway add `stream_options.include_usage`. */
  acceptsIncludeUsage(model: string | undefined): boolean {
    const candidates = model === undefined ? this.members : this.candidatesFor(model);
    return candidates.every((member) => member.config.includeUsage);
  }

  state(): UpstreamStateReport[] {
    const now = this.now();
    return this.members.map((member) => memberReport(member, now));
  }

  /** Every upstream key, for redaction. */
  secrets(): readonly string[] {
    return this.allSecrets;
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((member) => member.connection.close()));
  }

  /** The upstreams serving a model; computed once per model name (bounded: names come from clients). */
  private candidatesFor(model: string): PoolMember[] {
    let candidates = this.byModel.get(model);
    if (candidates === undefined) {
      if (this.byModel.size >= MODEL_CACHE_LIMIT) this.byModel.clear();
      candidates = this.members.filter((member) => member.serves(model));
      this.byModel.set(model, candidates);
    }
    return candidates;
  }

  /** A key to send with now, preferring upstreams and keys this request has not tried yet. */
  private select(candidates: readonly PoolMember[], pathname: string | undefined, tried: Tried): KeySlot | undefined {
    const now = this.now();
    const member = this.chooseMember(candidates, pathname, tried.members, now) ?? (tried.members.length > 0 ? this.chooseMember(candidates, pathname, NOTHING_TRIED, now) : undefined);
    return member?.chooseKey(now, tried.keys);
  }

  private chooseMember(candidates: readonly PoolMember[], pathname: string | undefined, avoid: readonly PoolMember[], now: number): PoolMember | undefined {
    let blockedByCircuit = false;
    for (const member of candidates) {
      const usable = (pathname === undefined || member.adapter.servesWithoutModel(pathname)) && !avoid.includes(member) && member.hasUsableKey(now);
      member.eligible = usable && member.circuit.canPass(now);
      if (usable && !member.eligible) blockedByCircuit = true;
    }
    const chosen = chooseWeighted(candidates, this.random);
    if (chosen || !blockedByCircuit) return chosen;
    // Panic mode: when open circuits would leave no upstream at all (e.g. the only one), trying a
    // tripped upstream beats refusing every request until the circuit's pause ends.
    for (const member of candidates) {
      member.eligible = (pathname === undefined || member.adapter.servesWithoutModel(pathname)) && !avoid.includes(member) && member.hasUsableKey(now);
    }
    return chooseWeighted(candidates, this.random);
  }

  /**
   * Each OpenAI-style upstream's own `GET /models` list (for the gateway's /v1/models), with a
   * usable key; an upstream that fails or has no list contributes nothing.
   */
  async upstreamModels(signal: AbortSignal): Promise<Array<{ upstream: string; models: Array<Record<string, unknown>> }>> {
    const lists = await Promise.all(
      this.members.map(async (member) => {
        if (member.config.type === 'azure') return { upstream: member.name, models: [] };
        const slot = member.chooseKey(this.now(), []);
        if (!slot) return { upstream: member.name, models: [] };
        try {
          const response = await member.connection.dispatcher.request({
            origin: member.connection.origin,
            path: member.adapter.target('/models', undefined),
            method: 'GET',
            headers: { accept: 'application/json', ...slot.headers },
            signal,
            headersTimeout: this.timeouts.firstByteTimeoutMs,
            bodyTimeout: this.timeouts.idleTimeoutMs,
          });
          if (response.statusCode !== 200) {
            await response.body.dump();
            return { upstream: member.name, models: [] };
          }
          const body = (await response.body.json()) as { data?: unknown };
          const models = Array.isArray(body.data) ? body.data.filter((m): m is Record<string, unknown> => typeof (m as { id?: unknown } | null)?.id === 'string') : [];
          return { upstream: member.name, models: models.filter((m) => member.serves(m.id as string)) };
        } catch {
          return { upstream: member.name, models: [] };
        }
      }),
    );
    return lists;
  }

  /** When some candidate could next take a request. */
  private availableAt(candidates: readonly PoolMember[], pathname: string | undefined): number {
    const now = this.now();
    let soonest = Infinity;
    for (const member of candidates) {
      if (pathname === undefined || member.adapter.servesWithoutModel(pathname)) soonest = Math.min(soonest, member.availableAt(now));
    }
    return soonest;
  }

  /** A key for the first attempt (or after a wait): when every candidate is resting, wait for the soonest if it is near. */
  private async slotFor(candidates: readonly PoolMember[], pathname: string | undefined, tried: Tried, signal: AbortSignal): Promise<KeySlot> {
    const slot = this.select(candidates, pathname, tried);
    if (slot) return slot;
    const waitMs = this.availableAt(candidates, pathname) - this.now();
    if (waitMs <= MAX_RETRY_WAIT_MS) {
      await this.pause(Math.max(waitMs, 1), signal);
      const later = this.select(candidates, pathname, tried);
      if (later) return later;
    }
    throw this.unavailable(candidates, pathname);
  }

  private async attempt(slot: KeySlot, request: PoolRequest, attempt: number): Promise<Attempt> {
    const member = slot.member;
    member.take(slot);
    const probe = member.circuit.enter(this.now());
    let response: Dispatcher.ResponseData;
    try {
      response = await member.connection.dispatcher.request({
        origin: member.connection.origin,
        path: member.adapter.target(request.path, request.model),
        method: request.method,
        headers: { ...request.headers, ...slot.headers },
        body: request.body,
        signal: request.signal,
        headersTimeout: this.timeouts.firstByteTimeoutMs,
        bodyTimeout: this.timeouts.idleTimeoutMs,
      });
    } catch (error) {
      member.release(slot);
      const retryable = !request.signal.aborted && isRetryableError(error);
      if (!request.signal.aborted) slot.errors += 1;
      this.recordOutcome(member, retryable ? 'failure' : 'neutral', probe);
      return { kind: 'error', error, retryable };
    }
    const status = response.statusCode;
    this.recordOutcome(member, isUpstreamFaultStatus(status) ? 'failure' : 'success', probe);
    if (status >= 500 || status === 429 || isKeyFaultStatus(status)) slot.errors += 1;
    if (status === 429) return this.rateLimited(slot, response);
    if (isKeyFaultStatus(status)) {
      this.disableKey(slot, `HTTP ${status}`, status);
      return { kind: 'retryable', response, keyFault: true, upstreamFault: false, retryAfterMs: undefined };
    }
    if (isRetryableStatus(status)) return { kind: 'retryable', response, keyFault: false, upstreamFault: true, retryAfterMs: parseRetryAfter(response.headers, this.now()) };
    this.logger.debug({ ...slot.logFields, attempt, status }, 'upstream answered');
    return { kind: 'final', response };
  }

  /** A 429 is either a rate limit (the key rests for Retry-After or `cooldown`) or an empty account (the key is set aside). */
  private async rateLimited(slot: KeySlot, response: Dispatcher.ResponseData): Promise<Attempt> {
    let peeked: Awaited<ReturnType<typeof peekBody>>;
    try {
      peeked = await peekBody(response.body, PEEK_LIMIT);
    } catch (error) {
      slot.member.release(slot);
      return { kind: 'error', error, retryable: isRetryableError(error) };
    }
    const replayed = { ...response, body: peeked.body };
    const now = this.now();
    if (isQuotaExhausted(peeked.text)) {
      this.disableKey(slot, 'HTTP 429 insufficient_quota', 429);
      return { kind: 'retryable', response: replayed, keyFault: true, upstreamFault: false, retryAfterMs: undefined };
    }
    const retryAfterMs = parseRetryAfter(response.headers, now);
    const coolingMs = Math.min(retryAfterMs ?? this.settings.cooldownMs, MAX_COOLDOWN_MS);
    slot.health.coolFor(now, coolingMs);
    this.logger.warn({ ...slot.logFields, coolingMs: Math.round(coolingMs) }, 'upstream key rate-limited (429); it rests before its next request');
    return { kind: 'retryable', response: replayed, keyFault: true, upstreamFault: false, retryAfterMs };
  }

  private disableKey(slot: KeySlot, reason: string, status: number): void {
    if (slot.health.disable(reason, this.now())) {
      this.logger.error({ ...slot.logFields, status, reason }, 'upstream key disabled until reload: the upstream refused it (wrong, revoked, unpaid or out of quota); replace it in the config');
    }
  }

  private recordOutcome(member: PoolMember, outcome: Outcome, probe: boolean): void {
    const change = member.circuit.record(outcome, probe, this.now());
    if (change === 'opened') {
      this.logger.warn({ upstream: member.name, openSeconds: this.settings.circuitOpenMs / 1000 }, 'upstream circuit opened: too many connect errors, timeouts or 5xx; requests go elsewhere until a probe succeeds');
    } else if (change === 'closed') {
      this.logger.info({ upstream: member.name }, 'upstream circuit closed: the probe succeeded');
    }
  }

  /**
   * How long to wait before the next attempt, or undefined to stop. Another upstream — or, after a
   * key fault (429, 401…), another key — goes at once; the same upstream again waits for its
   * Retry-After (up to 10 s) or the exponential backoff; nothing available within 10 s stops.
   */
  private planRetry(candidates: readonly PoolMember[], pathname: string | undefined, tried: Tried, failed: KeySlot, result: Exclude<Attempt, { kind: 'final' }>, attempt: number): { wait: number; next: KeySlot | undefined } | undefined {
    tried.keys.push(failed);
    const upstreamFault = result.kind === 'error' || result.upstreamFault;
    if (upstreamFault) tried.members.push(failed.member);
    const keyFault = result.kind === 'retryable' && result.keyFault;
    const retryAfterMs = result.kind === 'retryable' ? result.retryAfterMs : undefined;
    const backoff = backoffDelay(attempt - 1, this.settings.retryBaseDelayMs, this.random);
    const next = this.select(candidates, pathname, tried);
    if (next) {
      if (next.member !== failed.member || (keyFault && next !== failed)) return { wait: 0, next };
      if (retryAfterMs !== undefined) return retryAfterMs <= MAX_RETRY_WAIT_MS ? { wait: retryAfterMs, next } : undefined;
      return { wait: backoff, next };
    }
    const until = this.availableAt(candidates, pathname) - this.now();
    if (until > MAX_RETRY_WAIT_MS) return undefined;
    return { wait: Math.max(until, keyFault ? 1 : backoff), next: undefined };
  }

  private answer(slot: KeySlot, response: Dispatcher.ResponseData, attempts: number): PoolResponse {
    const member = slot.member;
    // In flight until the caller has relayed the whole body: long streams are the load that matters.
    if (response.body.destroyed) member.release(slot);
    else response.body.once('close', () => member.release(slot));
    return { response, upstream: member.name, upstreamKey: slot.fingerprint, attempts, includeUsage: member.config.includeUsage };
  }

  /** Drops a response that will not be relayed, so its connection goes back to the pool. */
  private discard(slot: KeySlot, response: Dispatcher.ResponseData): void {
    slot.member.release(slot);
    response.body.dump().catch(() => undefined);
  }

  private async pause(ms: number, signal: AbortSignal): Promise<void> {
    await this.sleep(ms, signal);
    if (signal.aborted) throw cancelled(signal);
  }

  /** Every candidate is resting: say which and why, and when to come back when that is known. */
  private unavailable(candidates: readonly PoolMember[], pathname: string | undefined): GatewayError {
    const now = this.now();
    const reasons: string[] = [];
    let allCooling = true;
    let soonest = Infinity;
    for (const member of candidates) {
      if (pathname !== undefined && !member.adapter.servesWithoutModel(pathname)) continue;
      soonest = Math.min(soonest, member.availableAt(now));
      const circuit = member.circuit.state(now);
      let reason: string;
      if (!member.circuit.canPass(now)) {
        reason = circuit.until === undefined ? 'circuit half-open, probe in flight' : `circuit open until ${new Date(circuit.until).toISOString()}`;
        allCooling = false;
      } else if (member.keys.every((key) => key.health.status(now).status === 'disabled')) {
        reason = 'every key disabled';
        allCooling = false;
      } else {
        reason = `keys rate-limited until ${new Date(member.availableAt(now)).toISOString()}`;
      }
      if (reasons.length < 5) reasons.push(`${member.name}: ${reason}`);
    }
    const more = candidates.length > reasons.length ? `, and ${candidates.length - reasons.length} more` : '';
    const headers = Number.isFinite(soonest) ? { 'retry-after': String(Math.max(1, Math.ceil((soonest - now) / 1000))) } : undefined;
    const message = `No upstream can take this request now (${reasons.join('; ')}${more}).`;
    return new GatewayError(allCooling ? 'rate_limit_exceeded' : 'upstream_unreachable', message, headers ? { headers } : {});
  }
}

function cancelled(signal: AbortSignal): GatewayError {
  return new GatewayError('upstream_unreachable', 'The request was cancelled before an upstream answered.', { cause: signal.reason });
}
