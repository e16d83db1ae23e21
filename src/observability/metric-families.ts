import type { Metric, Registry } from 'prom-client';

/** Label name → value, as prom-client's text format reads them. */
export type Labels = Readonly<Record<string, string>>;

/**
 * Counters and histograms the request path updates with a field write, read by prom-client only
 * at scrape time. prom-client's own `counter.labels(...).inc()` hashes and validates the label
 * set on every call (a string built per update); here a series is resolved once, when a label
 * combination is first seen, and the hot path keeps a reference to it (see metrics.ts).
 * A family registers itself in a prom-client Registry through the same duck type prom-client's
 * classes satisfy (`name`, `get()`), so the text format, escaping and merging are prom-client's.
 */
abstract class Family<Series> {
  readonly #series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  /** The series of these label values (in `labelNames` order), created on first use: called when a combination is first seen, not per request. */
  series(values: readonly string[]): Series {
    const key = values.join('\u0000');
    let found = this.#series.get(key);
    if (found === undefined) {
      const labels: Record<string, string> = {};
      for (let i = 0; i < this.labelNames.length; i++) labels[this.labelNames[i]!] = values[i] ?? '';
      found = this.create(Object.freeze(labels));
      this.#series.set(key, found);
    }
    return found;
  }

  /** Series so far (for tests of the cardinality bound). */
  get size(): number {
    return this.#series.size;
  }

  protected all(): IterableIterator<Series> {
    return this.#series.values();
  }

  protected abstract create(labels: Labels): Series;

  /** prom-client's Registry calls `reset()` on resetMetrics(); series live as long as the gateway. */
  reset(): void {
    this.#series.clear();
  }

  registerIn(registry: Registry): void {
    // Why the cast: prom-client types registerMetric for its own four classes; the registry only
    // reads `name` and `get()` (lib/registry.js), which this class provides in the same shape.
    registry.registerMetric(this as unknown as Metric);
  }
}

export class CounterSeries {
  value = 0;
  constructor(readonly labels: Labels) {}
}

export class CounterFamily extends Family<CounterSeries> {
  protected create(labels: Labels): CounterSeries {
    return new CounterSeries(labels);
  }

  get(): Promise<{ name: string; help: string; type: 'counter'; aggregator: 'sum'; values: Array<{ labels: Labels; value: number }> }> {
    const values: Array<{ labels: Labels; value: number }> = [];
    for (const series of this.all()) values.push({ labels: series.labels, value: series.value });
    return Promise.resolve({ name: this.name, help: this.help, type: 'counter', aggregator: 'sum', values });
  }
}

export class HistogramSeries {
  /** Per bucket (not cumulative), the last one for values above every bound (+Inf). */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let bucket = 0;
    while (bucket < bounds.length && value > bounds[bucket]!) bucket++;
    this.counts[bucket]!++;
    this.sum += value;
    this.count++;
  }
}

type HistogramValue = { labels: Labels; value: number; metricName: string };

export class HistogramFamily extends Family<HistogramSeries> {
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    /** Upper bounds, ascending, in the metric's unit. */
    readonly bounds: readonly number[],
  ) {
    super(name, help, labelNames);
  }

  protected create(labels: Labels): HistogramSeries {
    return new HistogramSeries(labels, this.bounds);
  }

  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: HistogramValue[] }> {
    const values: HistogramValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const series of this.all()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += series.counts[i]!;
        values.push({ labels: { ...series.labels, le: String(this.bounds[i]) }, value: cumulative, metricName: bucket });
      }
      values.push({ labels: { ...series.labels, le: '+Inf' }, value: series.count, metricName: bucket });
      values.push({ labels: series.labels, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: series.labels, value: series.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values });
  }
}
