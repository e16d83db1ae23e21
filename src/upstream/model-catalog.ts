import type { ModelListSource, UpstreamPool } from './pool.js';

const TTL_MS = 5 * 60_000;
const LOAD_TIMEOUT_MS = 15_000;
/** The largest page of Anthropic's `GET /v1/models` (https://docs.anthropic.com/en/api/models-list). */
const ANTHROPIC_PAGE = 1000;

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

  /** The last list loaded, without loading one (undefined before the first `models()`); the same array until the next load. */
  loaded(): readonly ModelEntry[] | undefined {
    return this.cached?.models;
  }

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
      for (const model of lists[index]!) if (!byId.has(model.id)) byId.set(model.id, source.protocol === 'anthropic' ? fromAnthropic(model, source.name) : { object: 'model', created: 0, owned_by: source.name, ...model, id: model.id });
    }
    for (const id of this.pool.configuredModels()) if (!byId.has(id)) byId.set(id, { id, object: 'model', created: 0, owned_by: 'openai-api' });
    const models = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.cached = { at: this.now(), models };
    return models;
  }

  /**
   * One upstream's own `GET /models`, pinned to it by affinity and sent in its own protocol: the
   * pool's key choice, health accounting, retries and timeouts apply as to any request. An
   * upstream that fails, or answers no list, contributes nothing. Anthropic pages its list (20 by
   * default), so it is asked for its largest page.
   */
  private async listOf(source: ModelListSource, signal: AbortSignal): Promise<Array<Record<string, unknown> & { id: string }>> {
    try {
      const path = source.protocol === 'anthropic' ? `/models?limit=${ANTHROPIC_PAGE}` : '/models';
      const { response } = await this.pool.send({ model: undefined, method: 'GET', path, headers: { accept: 'application/json' }, body: null, signal, affinity: { upstream: source.name, upstreamKey: null }, protocol: source.protocol });
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

/**
 * An entry of Anthropic's list, `{type: "model", id, display_name, created_at}`, in OpenAI's shape
 * (`created` in Unix seconds from the RFC 3339 `created_at`); `display_name` is kept.
 */
function fromAnthropic(model: Record<string, unknown> & { id: string }, upstream: string): ModelEntry {
  const createdAt = typeof model.created_at === 'string' ? Date.parse(model.created_at) : Number.NaN;
  const entry: ModelEntry = { id: model.id, object: 'model', created: Number.isNaN(createdAt) ? 0 : Math.floor(createdAt / 1000), owned_by: upstream };
  if (typeof model.display_name === 'string') entry.display_name = model.display_name;
  return entry;
}
