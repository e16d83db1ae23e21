import type { UpstreamProtocol } from '../config/upstream-entry.js';
import { GatewayError } from '../errors/index.js';
import { chooseKey, chooseWeighted, WeightedList } from './balancer.js';
import type { UpstreamRequest } from './client.js';
import type { KeySlot, PoolMember } from './pool-member.js';

const MODEL_CACHE_LIMIT = 1024;

/** The upstreams a request may go to, weights summed once; built once per model name. */
export class Candidates {
  readonly list: WeightedList<PoolMember>;
  /** Whether every candidate lets the gateway add `stream_options.include_usage`. */
  readonly includeUsage: boolean;

  constructor(members: readonly PoolMember[]) {
    this.list = new WeightedList(members);
    this.includeUsage = members.every((member) => member.config.includeUsage);
  }

  get members(): readonly PoolMember[] {
    return this.list.items;
  }
}

/**
 * One request's way through the pool: where it may go, what it already tried, and — while the
 * router chooses — the moment and the rules of that choice. Tried lists are allocated on the
 * first retry only.
 */
export class Route {
  /** Keys that failed this request: another is preferred. */
  triedKeys: KeySlot[] | undefined;
  /** Upstreams that failed as a whole (5xx, connection): another is preferred. */
  triedMembers: PoolMember[] | undefined;
  /** The clock at the current choice, read once for it. */
  now = 0;
  /** Relaxations for the current choice, when the strict rules leave nothing. */
  avoidTriedMembers = true;
  avoidTriedKeys = true;
  passOpenCircuits = false;

  constructor(
    readonly candidates: Candidates,
    /** The path (no query) of a request without a model: only upstreams that can take it without one. */
    readonly pathname: string | undefined,
    /** The key an object's affinity names, for the first attempt. */
    readonly pinnedKey: KeySlot | undefined,
  ) {}

  /** Remembers a failed attempt: its key is avoided next, and its upstream too when the upstream as a whole failed. */
  tried(slot: KeySlot, wholeUpstream: boolean): void {
    (this.triedKeys ??= []).push(slot);
    if (wholeUpstream) (this.triedMembers ??= []).push(slot.member);
  }
}

/** Per protocol: the candidates without a model, and those per model name (a cache). */
interface ProtocolCandidates {
  readonly all: Candidates;
  readonly byModel: Map<string, Candidates>;
}

/**
 * Which upstream and key take a request: candidates by protocol and model (computed once per
 * model name), an object's affinity, then weighted power-of-two choices among the upstreams that can take it
 * now (a path it serves without a model, a usable key, a closed circuit, not failed already), and
 * the least loaded usable key of the chosen one.
 */
export class Router {
  readonly members: readonly PoolMember[];
  private readonly openai: ProtocolCandidates;
  private readonly anthropic: ProtocolCandidates;
  /** Each upstream alone, for a request its object's affinity pins there. */
  private readonly alone = new Map<string, { member: PoolMember; candidates: Candidates }>();

  constructor(
    members: readonly PoolMember[],
    private readonly now: () => number,
    private readonly random: () => number,
  ) {
    this.members = members;
    const speaking = (protocol: UpstreamProtocol): ProtocolCandidates => ({ all: new Candidates(members.filter((member) => member.protocol === protocol)), byModel: new Map() });
    this.openai = speaking('openai');
    this.anthropic = speaking('anthropic');
    for (const member of members) this.alone.set(member.name, { member, candidates: new Candidates([member]) });
  }

  /**
   * Where a request may go: only upstreams speaking its protocol; refuses a model no such upstream
   * serves, or a model-less path none can take.
   */
  route(request: UpstreamRequest): Route {
    const { model, affinity } = request;
    const protocol = request.protocol ?? 'openai';
    const pinned = affinity === undefined ? undefined : this.alone.get(affinity.upstream);
    let candidates: Candidates;
    let pinnedKey: KeySlot | undefined;
    if (pinned !== undefined && pinned.member.protocol === protocol && (model === undefined || pinned.member.serves(model))) {
      candidates = pinned.candidates;
      const fingerprint = affinity!.upstreamKey;
      pinnedKey = fingerprint === null ? undefined : pinned.member.keyWith(fingerprint);
    } else {
      candidates = this.candidatesFor(model, protocol);
    }
    if (candidates.members.length === 0) {
      if (model === undefined) throw new GatewayError('model_not_found', `No upstream of this gateway speaks the ${protocol === 'anthropic' ? 'Anthropic' : 'OpenAI'} API.`);
      throw new GatewayError('model_not_found', `The model \`${model.slice(0, 200)}\` is not served by this gateway.`);
    }
    let pathname: string | undefined;
    if (model === undefined) {
      const queryAt = request.path.indexOf('?');
      pathname = queryAt === -1 ? request.path : request.path.slice(0, queryAt);
      if (!someServesWithoutModel(candidates.members, pathname)) {
        throw new GatewayError('model_not_found', `No upstream can serve ${pathname} without knowing the model; send the "model" field.`);
      }
    }
    return new Route(candidates, pathname, pinnedKey);
  }

  /**
   * The upstreams speaking `protocol` that serve a model (every one of them without a model);
   * computed once per protocol and model name (bounded: names come from clients).
   */
  candidatesFor(model: string | undefined, protocol: UpstreamProtocol = 'openai'): Candidates {
    const speaking = protocol === 'anthropic' ? this.anthropic : this.openai;
    if (model === undefined) return speaking.all;
    let candidates = speaking.byModel.get(model);
    if (candidates === undefined) {
      if (speaking.byModel.size >= MODEL_CACHE_LIMIT) speaking.byModel.clear();
      candidates = new Candidates(speaking.all.members.filter((member) => member.serves(model)));
      speaking.byModel.set(model, candidates);
    }
    return candidates;
  }

  /**
   * A key to send with now, or undefined when every candidate is resting. Prefers upstreams and
   * keys this request has not tried; an open circuit is passed only when nothing else is left.
   */
  choose(route: Route): KeySlot | undefined {
    route.now = this.now();
    const member = this.chooseMember(route) ?? (route.triedMembers === undefined ? undefined : this.chooseMember(route, false));
    return member === undefined ? undefined : this.chooseKey(member, route);
  }

  private chooseMember(route: Route, avoidTried = true): PoolMember | undefined {
    const list = route.candidates.list;
    route.avoidTriedMembers = avoidTried;
    route.passOpenCircuits = false;
    const chosen = chooseWeighted(list, this.random, memberAccepts, route);
    if (chosen !== undefined) return chosen;
    // Panic mode: when open circuits would leave no upstream at all (e.g. the only one), trying a
    // tripped upstream beats refusing every request until the circuit's pause ends.
    route.passOpenCircuits = true;
    return chooseWeighted(list, this.random, memberAccepts, route);
  }

  /** The usable key with the fewest in flight, in turn; keys already tried for this request only when nothing else is left. */
  private chooseKey(member: PoolMember, route: Route): KeySlot | undefined {
    route.avoidTriedKeys = true;
    let index = chooseKey(member.keys, member.keyCursor, keyAccepts, route);
    if (index === -1 && route.triedKeys !== undefined) {
      route.avoidTriedKeys = false;
      index = chooseKey(member.keys, member.keyCursor, keyAccepts, route);
    }
    return index === -1 ? undefined : member.keys[index];
  }

  /** When some candidate could next take a request. */
  availableAt(route: Route): number {
    const now = this.now();
    let soonest = Infinity;
    for (const member of route.candidates.members) {
      if (route.pathname === undefined || member.adapter.servesWithoutModel(route.pathname)) soonest = Math.min(soonest, member.availableAt(now));
    }
    return soonest;
  }

  /** Every candidate is resting: say which and why, and when to come back when that is known. */
  unavailable(route: Route): GatewayError {
    const now = this.now();
    const { members } = route.candidates;
    const reasons: string[] = [];
    let allCooling = true;
    let soonest = Infinity;
    for (const member of members) {
      if (route.pathname !== undefined && !member.adapter.servesWithoutModel(route.pathname)) continue;
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
    const more = members.length > reasons.length ? `, and ${members.length - reasons.length} more` : '';
    const headers = Number.isFinite(soonest) ? { 'retry-after': String(Math.max(1, Math.ceil((soonest - now) / 1000))) } : undefined;
    const message = `No upstream can take this request now (${reasons.join('; ')}${more}).`;
    return new GatewayError(allCooling ? 'rate_limit_exceeded' : 'upstream_unreachable', message, headers ? { headers } : {});
  }
}

function someServesWithoutModel(members: readonly PoolMember[], pathname: string): boolean {
  for (const member of members) if (member.adapter.servesWithoutModel(pathname)) return true;
  return false;
}

/** Whether an upstream can take the routed request now, under the route's current rules. */
function memberAccepts(member: PoolMember, route: Route): boolean {
  if (route.pathname !== undefined && !member.adapter.servesWithoutModel(route.pathname)) return false;
  if (route.avoidTriedMembers && route.triedMembers !== undefined && route.triedMembers.includes(member)) return false;
  if (!route.passOpenCircuits && !member.circuit.canPass(route.now)) return false;
  return member.hasUsableKey(route.now);
}

function keyAccepts(key: KeySlot, route: Route): boolean {
  if (!key.health.usable(route.now)) return false;
  return !route.avoidTriedKeys || route.triedKeys === undefined || !route.triedKeys.includes(key);
}
