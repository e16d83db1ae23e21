/** What the balancer reads of an upstream or key; `eligible` is set by the caller just before choosing. */
export interface Choosable {
  readonly weight: number;
  readonly inFlight: number;
  eligible: boolean;
}

/**
 * Weighted "power of two choices": draw two candidates at random in proportion to their weight,
 * keep the one with fewer requests in flight per unit of weight (ties keep the first draw).
 *
 * With nothing in flight (or equal load per weight) every pick is the first draw, so traffic splits
 * exactly by weight; under load a slow or busy upstream, whose requests pile up, loses the
 * comparison and gets less until it catches up — without the herding of "always the least loaded".
 * Three passes over the candidates, no allocation: the cost grows with their number only.
 */
export function chooseWeighted<T extends Choosable>(candidates: readonly T[], random: () => number): T | undefined {
  let total = 0;
  for (const candidate of candidates) if (candidate.eligible) total += candidate.weight;
  if (total <= 0) return undefined;
  const first = draw(candidates, total * random());
  const second = draw(candidates, total * random());
  // a.inFlight / a.weight < b.inFlight / b.weight, without dividing.
  return second.inFlight * first.weight < first.inFlight * second.weight ? second : first;
}

function draw<T extends Choosable>(candidates: readonly T[], point: number): T {
  let last: T | undefined;
  let remaining = point;
  for (const candidate of candidates) {
    if (!candidate.eligible) continue;
    last = candidate;
    remaining -= candidate.weight;
    if (remaining < 0) return candidate;
  }
  // Floating-point rounding can leave `remaining` at 0 after the last one.
  return last!;
}

/**
 * The eligible key with the fewest requests in flight, scanning from `start` so that equally
 * loaded keys take turns. Returns the index, or -1 when none is eligible.
 */
export function chooseKey(keys: readonly Pick<Choosable, 'inFlight' | 'eligible'>[], start: number): number {
  let best = -1;
  let bestLoad = Infinity;
  const count = keys.length;
  for (let step = 0; step < count; step++) {
    const index = (start + step) % count;
    const key = keys[index]!;
    if (key.eligible && key.inFlight < bestLoad) {
      best = index;
      bestLoad = key.inFlight;
    }
  }
  return best;
}
