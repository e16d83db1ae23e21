import type { UpstreamPool } from './pool.js';

const TTL_MS = 5 * 60_000;

export interface ModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  [field: string]: unknown;
}

/**
 * The models the gateway can serve, for GET /v1/models: every explicit model name in the
 * upstream config plus each upstream's own list (only models it is configured to serve),
 * fetched at most every five minutes.
 */
export class ModelCatalog {
  private cached: { at: number; models: ModelEntry[] } | undefined;
  private loading: Promise<ModelEntry[]> | undefined;

  constructor(
    private readonly pool: UpstreamPool,
    private readonly now: () => number = Date.now,
  ) {}

  models(): Promise<ModelEntry[]> {
    if (this.cached && this.now() - this.cached.at < TTL_MS) return Promise.resolve(this.cached.models);
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async load(): Promise<ModelEntry[]> {
    const byId = new Map<string, ModelEntry>();
    const lists = await this.pool.upstreamModels(AbortSignal.timeout(15_000));
    for (const { upstream, models } of lists) {
      for (const model of models) if (!byId.has(model.id as string)) byId.set(model.id as string, { object: 'model', created: 0, owned_by: upstream, ...model, id: model.id as string });
    }
    for (const id of this.pool.configuredModels()) if (!byId.has(id)) byId.set(id, { id, object: 'model', created: 0, owned_by: 'openai-api' });
    const models = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.cached = { at: this.now(), models };
    return models;
  }
}
