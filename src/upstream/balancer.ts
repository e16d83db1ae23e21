/** What the balancer reads of an upstream or key. */
export interface Choosable {
  readonly weight: number;
  readonly inFlight: number;
}

/**
 * Whether a candidate may be chosen now, given the chooser's context. A plain function and a
 * context object rather than a closure, so choosing allocates nothing per request.
 */
export type Accepts<T, C> = (candidate: T, context: C) => boolean;

/** Candidates with their weights summed once, so a weighted draw is a binary search, not a pass. */
export class WeightedList<T extends Choosable> {
  readonly items: readonly T[];
  readonly total: number;
  /** `ends[i]`: the summed weight of items 0..i. */
  private readonly ends: Float64Array;

  constructor(items: readonly T[]) {
    this.items = items;
    this.ends = new Float64Array(items.length);
    let total = 0;
    for (let i = 0; i < items.length; i++) this.ends[i] = total += items[i]!.weight;
    this.total = total;
  }

  /** The item whose share of [0, total) holds `point`; the last one for a point rounded up to `total`. */
  at(point: number): T {
    const ends = this.ends;
    let low = 0;
    let high = ends.length - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (point < ends[middle]!) high = middle;
      else low = middle + 1;
    }
    return this.items[low]!;
  }
}

// Random draws that may land on a refused candidate before the exact scan takes over.
const DRAWS_BEFORE_SCAN = 4;

/**
 * Weighted "power of two choices": draw two accepted candidates at random in proportion to their
 * weight, keep the one with fewer requests in flight per unit of weight (ties keep the first draw).
 *
 * With nothing in flight (or equal load per weight) every pick is the first draw, so traffic splits
 * exactly by weight; under load a slow or busy upstream, whose requests pile up, loses the
 * comparison and gets less until it catches up — without the herding of "always the least loaded".
 *
 * Each draw is a binary search over the precomputed weights, and `accepts` runs only for the drawn
 * candidates: redrawing after a refused one is rejection sampling, which keeps the draw exactly
 * proportional to weight among the accepted. Only when draws keep landing on refused candidates
 * (most of the list is unavailable) does it fall back to a pass over all of them. No allocation.
 */
export function chooseWeighted<T extends Choosable, C>(list: WeightedList<T>, random: () => number, accepts: Accepts<T, C>, context: C): T | undefined {
  if (list.items.length <= 1) {
    const only = list.items[0];
    return only !== undefined && accepts(only, context) ? only : undefined;
  }
  const first = draw(list, random, accepts, context);
  if (first === undefined) return undefined;
  const second = draw(list, random, accepts, context) ?? first;
  // a.inFlight / a.weight < b.inFlight / b.weight, without dividing.
  return second.inFlight * first.weight < first.inFlight * second.weight ? second : first;
}

function draw<T extends Choosable, C>(list: WeightedList<T>, random: () => number, accepts: Accepts<T, C>, context: C): T | undefined {
  for (let attempt = 0; attempt < DRAWS_BEFORE_SCAN; attempt++) {
    const candidate = list.at(list.total * random());
    if (accepts(candidate, context)) return candidate;
  }
  return scan(list.items, random, accepts, context);
}

/** The same draw by walking the list: sum the accepted weights, then find the point among them. */
function scan<T extends Choosable, C>(items: readonly T[], random: () => number, accepts: Accepts<T, C>, context: C): T | undefined {
  let total = 0;
  for (const item of items) if (accepts(item, context)) total += item.weight;
  if (total <= 0) return undefined;
  let remaining = total * random();
  let last: T | undefined;
  for (const item of items) {
    if (!accepts(item, context)) continue;
    last = item;
    remaining -= item.weight;
    if (remaining < 0) return item;
  }
  // Floating-point rounding can leave `remaining` at 0 after the last one.
  return last;
}

/**
 * The accepted key with the fewest requests in flight, scanning from `start` so that equally
 * loaded keys take turns. Returns the index, or -1 when none is accepted. An idle key ends the
 * scan (none can have fewer), so with spare keys it costs a step or two whatever their number.
 */
export function chooseKey<T extends Pick<Choosable, 'inFlight'>, C>(keys: readonly T[], start: number, accepts: Accepts<T, C>, context: C): number {
  let best = -1;
  let bestLoad = Infinity;
  const count = keys.length;
  let index = start;
  for (let step = 0; step < count; step++) {
    const key = keys[index]!;
    if (key.inFlight < bestLoad && accepts(key, context)) {
      best = index;
      bestLoad = key.inFlight;
      if (bestLoad <= 0) break;
    }
    index = index + 1 === count ? 0 : index + 1;
  }
  return best;
}
