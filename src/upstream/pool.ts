import { setTimeout as delay } from 'node:timers/promises';
import type { PoolSettings, UpstreamConfig, UpstreamProtocol } from '../config/upstream-entry.js';
import type { Logger } from '../observability/logger.js';
import { AttemptLoop, type PoolResponse } from './attempt-loop.js';
import type { UpstreamClient, UpstreamRequest } from './client.js';
import type { TimeoutSettings } from './failure.js';
import { HealthMonitor } from './health-monitor.js';
import { disabledReason, type KeyVerdict, type KeyVerdictListener } from './key-verdict.js';
import { PoolMember, type KeySlot } from './pool-member.js';
import { memberReport, type UpstreamStateReport } from './pool-state.js';
import { RetryPolicy } from './retry-policy.js';
import { GatewayError } from '../errors/index.js';
import type { SocketEndpoint } from './adapters/adapter.js';
import { Candidates, Route, Router } from './router.js';

export type { PoolResponse } from './attempt-loop.js';
export type { KeyStateReport, UpstreamStateReport } from './pool-state.js';

/** A request for the pool; the same shape the routes send to any UpstreamClient. */
export type PoolRequest = UpstreamRequest;

export type { SocketEndpoint } from './adapters/adapter.js';

/** One upstream WebSocket a relay may open: where, with which headers, and which key holds what it creates. */
export interface SocketTarget {
  readonly upstream: string;
  /** Fingerprint of the key (see KeySlot.fingerprint), for the ownership of objects made on the socket. */
  readonly upstreamKey: string | null;
  /** ws:// or wss:// URL, query included. */
  readonly url: string;
  /** The entry's extra headers and the credential. */
  readonly headers: Readonly<Record<string, string>>;
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
  /** Told when a key is set aside or rests (to share with other instances). */
  onKeyVerdict?: KeyVerdictListener;
}

/** An upstream key as other instances name it (see KeyVerdict). */
export interface SharedKeyName {
  readonly upstream: string;
  readonly key: string;
}

/** An upstream whose own `GET /models` list the model catalogue reads. */
export interface ModelListSource {
  readonly name: string;
  /** The API it speaks: the list is asked for in it, and comes back in its shape. */
  readonly protocol: UpstreamProtocol;
  /** Whether this upstream is configured to serve a model its list names. */
  serves(model: string): boolean;
}

const defaultSleep = async (ms: number, signal: AbortSignal): Promise<void> => {
  await delay(ms, undefined, { signal }).catch(() => undefined);
};

/**
 * Several upstreams (and several keys each) behind one `send()`. The work is split by job:
 * `Router` picks the upstream and key, `AttemptLoop` sends and tries again, `RetryPolicy` decides
 * whether, when and where to try again, `HealthMonitor` rests and sets aside keys and trips
 * circuits. This class builds them and answers what the routes ask about the pool.
 */
export class UpstreamPool implements UpstreamClient {
  private readonly router: Router;
  private readonly loop: AttemptLoop;
  private readonly allSecrets: readonly string[];
  private readonly listSources: readonly ModelListSource[];
  private readonly now: () => number;
  private readonly maxAttempts: number;

  constructor(upstreams: readonly UpstreamConfig[], settings: PoolSettings, options: PoolOptions) {
    if (upstreams.length === 0) throw new Error('the upstream pool needs at least one upstream');
    const names = new Set(upstreams.map((upstream) => upstream.name));
    if (names.size !== upstreams.length) throw new Error('upstream names must be unique');
    this.now = options.now ?? Date.now;
    this.maxAttempts = settings.maxAttempts;
    const random = options.random ?? Math.random;
    const circuit = { errorRatio: settings.circuitErrorRatio, minRequests: settings.circuitMinRequests, windowMs: settings.circuitWindowMs, openMs: settings.circuitOpenMs };
    const members = upstreams.map((upstream) => new PoolMember(upstream, circuit, options.timeouts.connectTimeoutMs));
    this.router = new Router(members, this.now, random);
    this.loop = new AttemptLoop({
      router: this.router,
      policy: new RetryPolicy(settings, this.router, this.now, random),
      health: new HealthMonitor(options.logger, settings, this.now, options.onKeyVerdict),
      logger: options.logger,
      timeouts: options.timeouts,
      now: this.now,
      sleep: options.sleep ?? defaultSleep,
    });
    this.allSecrets = upstreams.flatMap((upstream) => upstream.apiKeys);
    // Azure lists its base models, not the deployments that make a model servable there.
    this.listSources = members.filter((member) => member.config.type !== 'azure');
  }

  /** Sends with the key the router chooses, trying again where the retry policy says; the answer's body unread. */
  send(request: PoolRequest): Promise<PoolResponse> {
    let route: Route;
    try {
      route = this.router.route(request);
    } catch (error) {
      // A refusal (unknown model) is a rejection like any other failure, without an async wrapper per request.
      return Promise.reject(error);
    }
    return this.loop.run(request, route);
  }

  /**
   * The upstream WebSockets to try for `socket` (and `model`, when the handshake names one), best
   * first and at most max_attempts: the affinity's key when it has such a socket, then the
   * router's choices (weights, key health, circuits), each on another key. Upstreams without that
   * WebSocket (most OpenAI-compatible providers, Azure's Responses) and upstreams behind a proxy
   * are left out; when none is left the upgrade is refused with 426, which makes clients such as
   * Codex fall back to HTTP at once.
   */
  socketTargets(socket: SocketEndpoint, query: URLSearchParams, model: string | undefined, affinity?: { upstream: string; upstreamKey: string | null }): SocketTarget[] {
    const paths = new Map<PoolMember, string>();
    for (const member of this.router.candidatesFor(model).members) {
      const path = member.config.proxy === undefined ? member.adapter.socketTarget(socket, query, model) : undefined;
      if (path !== undefined) paths.set(member, path);
    }
    if (paths.size === 0) {
      const what = socket === '/responses' ? 'WebSocket mode of /v1/responses; use HTTP (POST /v1/responses with "stream": true)' : `Realtime WebSocket${model === undefined ? '' : ` for model "${model.slice(0, 200)}"`}`;
      throw new GatewayError('upgrade_required', `No upstream of this gateway serves the ${what}.`, { headers: { connection: 'close' } });
    }
    const pinnedMember = affinity === undefined ? undefined : [...paths.keys()].find((member) => member.name === affinity.upstream);
    const pinnedKey = pinnedMember !== undefined && affinity!.upstreamKey !== null ? pinnedMember.keyWith(affinity!.upstreamKey) : undefined;
    const route = new Route(new Candidates(pinnedMember !== undefined ? [pinnedMember] : [...paths.keys()]), undefined, pinnedKey);
    const targets: SocketTarget[] = [];
    const target = (slot: KeySlot): SocketTarget => ({
      upstream: slot.member.name,
      upstreamKey: slot.fingerprint,
      url: slot.member.connection.origin.replace(/^http/, 'ws') + paths.get(slot.member)!,
      headers: slot.headers,
    });
    if (pinnedKey !== undefined) {
      targets.push(target(pinnedKey));
      route.tried(pinnedKey, false);
    }
    while (targets.length < this.maxAttempts) {
      const slot = this.router.choose(route);
      if (slot === undefined || (route.triedKeys?.includes(slot) ?? false)) break;
      targets.push(target(slot));
      route.tried(slot, true);
    }
    if (targets.length === 0) throw this.router.unavailable(route);
    return targets;
  }

  /** Whether the named upstream serves this model (a WebSocket's turns go to the upstream it is connected to). */
  upstreamServes(upstream: string, model: string): boolean {
    return this.router.members.some((member) => member.name === upstream && member.serves(model));
  }

  /** Whether some upstream serves this (alias-resolved) model: one speaking `protocol`, or any when none is named. */
  serves(model: string, protocol?: UpstreamProtocol): boolean {
    if (protocol !== undefined) return this.router.candidatesFor(model, protocol).members.length > 0;
    return this.router.candidatesFor(model, 'openai').members.length > 0 || this.router.candidatesFor(model, 'anthropic').members.length > 0;
  }

  /**
   * Which APIs serve this (alias-resolved) model: a route sends natively when its own protocol
   * does, and translates to the other one otherwise.
   */
  protocolsFor(model: string): { openai: boolean; anthropic: boolean } {
    return { openai: this.router.candidatesFor(model, 'openai').members.length > 0, anthropic: this.router.candidatesFor(model, 'anthropic').members.length > 0 };
  }

  /** Names of explicit (non-glob) models from config, plus Azure deployment model names — those actually served. */
  configuredModels(): string[] {
    const names = new Set<string>();
    for (const member of this.router.members) {
      for (const name of member.matcher.exact) names.add(name);
      for (const name of Object.keys(member.config.deployments)) names.add(name);
    }
    return [...names].filter((name) => this.serves(name));
  }

  /** Whether every upstream that may serve this model lets the gateway add `stream_options.include_usage`. */
  acceptsIncludeUsage(model: string | undefined): boolean {
    return this.router.candidatesFor(model).includeUsage;
  }

  /**
   * The upstreams with their own `GET /models` list (OpenAI's or Anthropic's shape). The catalogue
   * sends to each through `send()` with an affinity naming it and its protocol, so the list is
   * fetched like any request.
   */
  modelListSources(): readonly ModelListSource[] {
    return this.listSources;
  }

  state(): UpstreamStateReport[] {
    const now = this.now();
    return this.router.members.map((member) => memberReport(member, now));
  }

  /**
   * Applies what another instance learned about a key: rests it or sets it aside here too, so no
   * request has to fail on it first. Returns whether this pool has that key.
   */
  applyVerdict(verdict: KeyVerdict): boolean {
    const now = this.now();
    let found = false;
    for (const member of this.router.members) {
      if (member.name !== verdict.upstream) continue;
      // Every slot: the same secret may be listed twice.
      for (const slot of member.keys) {
        if (slot.fingerprint !== verdict.key) continue;
        found = true;
        if (verdict.state === 'cooling') slot.health.coolFor(now, verdict.ms);
        else slot.health.disable(`${disabledReason(verdict.status)}, seen by another instance`, now);
      }
    }
    return found;
  }

  /** Every key that has a fingerprint, named as other instances name it. */
  sharedKeyNames(): SharedKeyName[] {
    const names = new Map<string, SharedKeyName>();
    for (const member of this.router.members) {
      for (const slot of member.keys) if (slot.fingerprint !== null) names.set(`${member.name}\n${slot.fingerprint}`, { upstream: member.name, key: slot.fingerprint });
    }
    return [...names.values()];
  }

  /** Every upstream key, for redaction. */
  secrets(): readonly string[] {
    return this.allSecrets;
  }

  async close(): Promise<void> {
    await Promise.all(this.router.members.map((member) => member.connection.close()));
  }
}
