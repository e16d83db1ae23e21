// Small numeric helpers: percentiles of samples, medians across rounds.

/** The p-th percentile (nearest rank) of a sorted array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export function sortedCopy(values) {
  return Float64Array.from(values).sort();
}

export function median(values) {
  const present = values.filter((value) => typeof value === 'number' && Number.isFinite(value));
  if (present.length === 0) return undefined;
  const sorted = present.sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Median of one field across rounds' results. */
export function medianOf(results, pick) {
  return median(results.map(pick));
}
