import type { ModelListSource, UpstreamPool } from './pool.js';

const TTL_MS = 5 * 60_000;
const LOAD_TIMEOUT_MS = 15_000;

export interface ModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  [field: string]: unknown;
}

/** What the catalogue needs of the pool: its upstreams' lists go through the same `send()` as every request. */
export type ModelCatalogPool = Pick<UpstreamPool, 'send' | 'configuredModels' | 'modelListSources'>;

/**
 * The models the gateway can serve, for GET /v1/models: every explicit model name in the
 * upstream config plus each upstream's own list (only models it is configured to serve),
 * fetched at most every five minutes.
 */
export class ModelCatalog {
  private cached: { at: number; models: ModelEntry[] } | undefined;
  private loading: Promise<ModelEntry[]> | undefined;

  constructor(
    private readonly pool: ModelCatalogPool,
    private readonly now: () => number = Date.now,
  ) {}

  models(): Promise<ModelEntry[]> {
    if (this.cached && this.now() - this.cached.at < TTL_MS) return Promise.resolve(this.cached.models);
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async load(): Promise<ModelEntry[]> {
    const byId = new Map<string, ModelEntry>();
    const signal = AbortSignal.timeout(LOAD_TIMEOUT_MS);
    const sources = this.pool.modelListSources();
    const lists = await Promise.all(sources.map((source) => this.listOf(source, signal)));
    for (const [index, source] of sources.entries()) {
      for (const model of lists[index]!) if (!byId.has(model.id)) byId.set(model.id, { object: 'model', created: 0, owned_by: source.name, ...model, id: model.id });
    }
    for (const id of this.pool.configuredModels()) if (!byId.has(id)) byId.set(id, { id, object: 'model', created: 0, owned_by: 'openai-api' });
    const models = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.cached = { at: this.now(), models };
    return models;
  }

  /**
   * One upstream's own `GET /models`, pinned to it by affinity: the pool's key choice, health
   * accounting, retries and timeouts apply as to any request. An upstream that fails, or answers
   * no list, contributes nothing.
   */
  private async listOf(source: ModelListSource, signal: AbortSignal): Promise<Array<Record<string, unknown> & { id: string }>> {
    try {
      const { response } = await this.pool.send({ model: undefined, method: 'GET', path: '/models', headers: { accept: 'application/json' }, body: null, signal, affinity: { upstream: source.name, upstreamKey: null } });
      if (response.statusCode !== 200) {
        await response.body.dump();
        return [];
      }
      const body = (await response.body.json()) as { data?: unknown } | null;
      const data: unknown[] = Array.isArray(body?.data) ? body.data : [];
      return data.filter((model): model is Record<string, unknown> & { id: string } => typeof (model as { id?: unknown } | null)?.id === 'string' && source.serves((model as { id: string }).id));
    } catch {
      return [];
    }
  }
}
