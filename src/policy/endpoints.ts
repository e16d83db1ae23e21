import type { EndpointKind } from '../domain/endpoint-kind.js';

export type { EndpointKind };

/** The kinds of objects an app key can own; the name is what ownership records store. */
export type ObjectKind =
  | 'file'
  | 'upload'
  | 'batch'
  | 'response'
  | 'conversation'
  | 'chat_completion'
  | 'vector_store'
  | 'assistant'
  | 'thread'
  | 'fine_tuning_job'
  | 'container';

/** How the request body is read. */
export type BodyShape =
  /** JSON whatever the Content-Type says (sniffed, parsed, forwarded as application/json). */
  | 'json'
  /** multipart/form-data with a `model` field read on the way through, or JSON. */
  | 'multipart'
  /** multipart/form-data streamed through as is (it carries no model); any other body is read as JSON. */
  | 'upload'
  /**
   * The Realtime WebRTC call: a small multipart/form-data form (`sdp`, and `session` whose
   * `model` is read) read whole (http/call-form.ts), or a raw `application/sdp` offer (no model).
   */
  | 'call'
  /** No body: one sent anyway is read and dropped, never forwarded. */
  | 'none';

/**
 * What an endpoint lets the gateway enforce for an app key. A key restricted in a way the
 * endpoint cannot enforce is refused there (403 endpoint_not_allowed) unless its owner granted
 * the endpoint in the key's `endpoints`.
 */
export interface Enforces {
  /** The model the request will use is known before it is sent (a model list holds). */
  readonly models: boolean;
  /** Its cost is metered from the answer (token/USD budgets hold). */
  readonly budget: boolean;
  /** The gateway can cap what it generates (max_tokens_ceiling holds). */
  readonly ceiling: boolean;
  /** The gateway can put the key's persona in (a persona holds). */
  readonly persona: boolean;
}

/** What the request does to objects, by the path's `{id}` (always the first id segment). */
export type ObjectAction =
  /** Creates an object of `kind`: the id in the answer is recorded as the caller's. */
  | { readonly does: 'create'; readonly kind: ObjectKind }
  /** Lists objects of `kind`: the answer is filtered to the caller's own. */
  | { readonly does: 'list'; readonly kind: ObjectKind }
  /** Uses (reads, changes, deletes, runs) the object of `kind` named by the path's id. */
  | { readonly does: 'use'; readonly kind: ObjectKind };

export interface Endpoint {
  /** `METHOD /v1/pattern`, as documented in SECURITY.md. */
  readonly name: string;
  readonly kind: EndpointKind;
  readonly body: BodyShape;
  /** Where the model sits in the body, when the endpoint takes one. */
  readonly modelAt: 'model' | 'session.model' | undefined;
  /** The model the upstream uses when none is sent (checked against a key's model list). */
  readonly defaultModel: string | undefined;
  readonly enforces: Enforces;
  readonly object: ObjectAction | undefined;
  /** The body may name other objects (previous_response_id, file_ids…): each must be the caller's. */
  readonly references: boolean;
  /** The id from the path, for `use` actions. */
  readonly id?: string;
}

const ALL: Enforces = { models: true, budget: true, ceiling: true, persona: true };
/** Nothing generated, nothing spent beyond storage: nothing to enforce. */
const FREE = ALL;
/** Generates, but priced per image/second/character or spent later: models hold, budgets do not (no tokens to cap, no chat to put a persona in). */
const MEDIA: Enforces = { models: true, budget: false, ceiling: true, persona: true };
/** A session configured by the caller (instructions, output limits) that spends where the gateway cannot meter: only the model holds. */
const MODELS_ONLY: Enforces = { models: true, budget: false, ceiling: false, persona: false };
/** Generates with a model chosen elsewhere (an assistant's) and spends where we cannot meter. */
const NOTHING: Enforces = { models: false, budget: false, ceiling: false, persona: false };

interface Spec {
  kind?: EndpointKind;
  body?: BodyShape;
  modelAt?: 'model' | 'session.model';
  defaultModel?: string;
  enforces?: Enforces;
  object?: ObjectAction;
  references?: boolean;
}

const create = (kind: ObjectKind): ObjectAction => ({ does: 'create', kind });
const list = (kind: ObjectKind): ObjectAction => ({ does: 'list', kind });
const use = (kind: ObjectKind): ObjectAction => ({ does: 'use', kind });

/**
 * Every /v1 endpoint the gateway knows, with what it can enforce there. `{id}` is an object id
 * (the first one decides ownership; ids after it live inside that object), `{}` any other id.
 * Paths not listed are refused to app keys unless granted; access tokens may use any path.
 * The OpenAI API reference is the source: https://platform.openai.com/docs/api-reference
 */
const TABLE: Readonly<Record<string, Spec>> = {
  // Generation, metered from the answer.
  'POST /chat/completions': { kind: 'chat', body: 'json', modelAt: 'model', references: true },
  // The persona is a system message: legacy completions have no place for one.
  'POST /completions': { kind: 'completions', body: 'json', modelAt: 'model', enforces: { models: true, budget: true, ceiling: true, persona: false } },
  'POST /embeddings': { kind: 'embeddings', body: 'json', modelAt: 'model' },
  'POST /responses': { kind: 'responses', body: 'json', modelAt: 'model', references: true, object: create('response') },
  'POST /responses/input_tokens': { body: 'json', modelAt: 'model', references: true },
  'POST /moderations': { body: 'json', modelAt: 'model', defaultModel: 'omni-moderation-latest' },
  'POST /images/generations': { body: 'json', modelAt: 'model', defaultModel: 'dall-e-2', enforces: MEDIA },
  'POST /images/edits': { body: 'multipart', modelAt: 'model', defaultModel: 'dall-e-2', enforces: MEDIA, references: true },
  'POST /images/variations': { body: 'multipart', modelAt: 'model', defaultModel: 'dall-e-2', enforces: MEDIA, references: true },
  'POST /audio/speech': { body: 'json', modelAt: 'model', enforces: MEDIA },
  'POST /audio/transcriptions': { body: 'multipart', modelAt: 'model', enforces: MEDIA },
  'POST /audio/translations': { body: 'multipart', modelAt: 'model', enforces: MEDIA },
  // A temporary credential spends directly at the upstream: only the model can be checked.
  // Anthropic's Messages API (routes/messages.ts): persona as `system`, the ceiling on `max_tokens`.
  'POST /messages': { kind: 'messages', body: 'json', modelAt: 'model' },
  'POST /messages/count_tokens': { body: 'json', modelAt: 'model' },
  // WebSockets (src/sockets/): each turn is checked, admitted and metered like its HTTP request.
  'WEBSOCKET /responses': { kind: 'responses', body: 'none', modelAt: 'model', references: true, object: create('response') },
  // The model is checked at the handshake and on session.update; each response is metered from response.done. The session's instructions and output limits are the caller's.
  'WEBSOCKET /realtime': { body: 'none', modelAt: 'model', enforces: { models: true, budget: true, ceiling: false, persona: false } },
  'POST /realtime/client_secrets': { body: 'json', modelAt: 'session.model', enforces: MODELS_ONLY },
  // The WebRTC SDP exchange: the session in the form is the one client_secrets takes.
  'POST /realtime/calls': { body: 'call', modelAt: 'session.model', enforces: MODELS_ONLY },
  'POST /realtime/sessions': { body: 'json', modelAt: 'model', enforces: MODELS_ONLY },
  'POST /realtime/transcription_sessions': { body: 'json', enforces: NOTHING },

  'GET /models': { body: 'none' },
  'GET /models/{}': { body: 'none' },

  'POST /files': { body: 'upload', object: create('file') },
  'GET /files': { body: 'none', object: list('file') },
  'GET /files/{id}': { body: 'none', object: use('file') },
  'DELETE /files/{id}': { body: 'none', object: use('file') },
  'GET /files/{id}/content': { body: 'none', object: use('file') },

  'POST /uploads': { body: 'json', object: create('upload') },
  'POST /uploads/{id}/parts': { body: 'upload', object: use('upload') },
  'POST /uploads/{id}/complete': { body: 'json', object: use('upload') },
  'POST /uploads/{id}/cancel': { body: 'none', object: use('upload') },

  // Batches are checked line by line against the key (policy/batch-input.ts) and charged an estimate.
  'POST /batches': { body: 'json', references: true, enforces: { models: true, budget: true, ceiling: true, persona: false }, object: create('batch') },
  'GET /batches': { body: 'none', object: list('batch') },
  'GET /batches/{id}': { body: 'none', object: use('batch') },
  'POST /batches/{id}/cancel': { body: 'none', object: use('batch') },

  'GET /responses/{id}': { body: 'none', object: use('response') },
  'DELETE /responses/{id}': { body: 'none', object: use('response') },
  'POST /responses/{id}/cancel': { body: 'none', object: use('response') },
  'GET /responses/{id}/input_items': { body: 'none', object: use('response') },

  'POST /conversations': { body: 'json', references: true, object: create('conversation') },
  'GET /conversations/{id}': { body: 'none', object: use('conversation') },
  'POST /conversations/{id}': { body: 'json', object: use('conversation') },
  'DELETE /conversations/{id}': { body: 'none', object: use('conversation') },
  'GET /conversations/{id}/items': { body: 'none', object: use('conversation') },
  'POST /conversations/{id}/items': { body: 'json', references: true, object: use('conversation') },
  'GET /conversations/{id}/items/{}': { body: 'none', object: use('conversation') },
  'DELETE /conversations/{id}/items/{}': { body: 'none', object: use('conversation') },

  // Stored chat completions (`store: true`).
  'GET /chat/completions': { body: 'none', object: list('chat_completion') },
  'GET /chat/completions/{id}': { body: 'none', object: use('chat_completion') },
  'POST /chat/completions/{id}': { body: 'json', object: use('chat_completion') },
  'DELETE /chat/completions/{id}': { body: 'none', object: use('chat_completion') },
  'GET /chat/completions/{id}/messages': { body: 'none', object: use('chat_completion') },

  'POST /vector_stores': { body: 'json', references: true, object: create('vector_store') },
  'GET /vector_stores': { body: 'none', object: list('vector_store') },
  'GET /vector_stores/{id}': { body: 'none', object: use('vector_store') },
  'POST /vector_stores/{id}': { body: 'json', object: use('vector_store') },
  'DELETE /vector_stores/{id}': { body: 'none', object: use('vector_store') },
  'POST /vector_stores/{id}/search': { body: 'json', object: use('vector_store') },
  'GET /vector_stores/{id}/files': { body: 'none', object: use('vector_store') },
  'POST /vector_stores/{id}/files': { body: 'json', references: true, object: use('vector_store') },
  'GET /vector_stores/{id}/files/{}': { body: 'none', object: use('vector_store') },
  'POST /vector_stores/{id}/files/{}': { body: 'json', object: use('vector_store') },
  'DELETE /vector_stores/{id}/files/{}': { body: 'none', object: use('vector_store') },
  'GET /vector_stores/{id}/files/{}/content': { body: 'none', object: use('vector_store') },
  'POST /vector_stores/{id}/file_batches': { body: 'json', references: true, object: use('vector_store') },
  'GET /vector_stores/{id}/file_batches/{}': { body: 'none', object: use('vector_store') },
  'POST /vector_stores/{id}/file_batches/{}/cancel': { body: 'none', object: use('vector_store') },
  'GET /vector_stores/{id}/file_batches/{}/files': { body: 'none', object: use('vector_store') },

  'POST /assistants': { body: 'json', modelAt: 'model', references: true, object: create('assistant') },
  'GET /assistants': { body: 'none', object: list('assistant') },
  'GET /assistants/{id}': { body: 'none', object: use('assistant') },
  'POST /assistants/{id}': { body: 'json', modelAt: 'model', references: true, object: use('assistant') },
  'DELETE /assistants/{id}': { body: 'none', object: use('assistant') },

  'POST /threads': { body: 'json', references: true, object: create('thread') },
  'GET /threads/{id}': { body: 'none', object: use('thread') },
  'POST /threads/{id}': { body: 'json', references: true, object: use('thread') },
  'DELETE /threads/{id}': { body: 'none', object: use('thread') },
  'GET /threads/{id}/messages': { body: 'none', object: use('thread') },
  'POST /threads/{id}/messages': { body: 'json', references: true, object: use('thread') },
  'GET /threads/{id}/messages/{}': { body: 'none', object: use('thread') },
  'POST /threads/{id}/messages/{}': { body: 'json', object: use('thread') },
  'DELETE /threads/{id}/messages/{}': { body: 'none', object: use('thread') },
  // Runs generate with the assistant's model and are billed without a usage the gateway sees in time.
  'POST /threads/runs': { body: 'json', references: true, enforces: NOTHING, object: create('thread') },
  'POST /threads/{id}/runs': { body: 'json', references: true, enforces: NOTHING, object: use('thread') },
  'GET /threads/{id}/runs': { body: 'none', object: use('thread') },
  'GET /threads/{id}/runs/{}': { body: 'none', object: use('thread') },
  'POST /threads/{id}/runs/{}': { body: 'json', object: use('thread') },
  'POST /threads/{id}/runs/{}/cancel': { body: 'none', object: use('thread') },
  'POST /threads/{id}/runs/{}/submit_tool_outputs': { body: 'json', enforces: NOTHING, object: use('thread') },
  'GET /threads/{id}/runs/{}/steps': { body: 'none', object: use('thread') },
  'GET /threads/{id}/runs/{}/steps/{}': { body: 'none', object: use('thread') },

  // Training is billed per token trained, long after the request: the base model is checked, budgets cannot hold.
  'POST /fine_tuning/jobs': { body: 'json', modelAt: 'model', references: true, enforces: MEDIA, object: create('fine_tuning_job') },
  'GET /fine_tuning/jobs': { body: 'none', object: list('fine_tuning_job') },
  'GET /fine_tuning/jobs/{id}': { body: 'none', object: use('fine_tuning_job') },
  'POST /fine_tuning/jobs/{id}/cancel': { body: 'none', object: use('fine_tuning_job') },
  'POST /fine_tuning/jobs/{id}/pause': { body: 'none', object: use('fine_tuning_job') },
  'POST /fine_tuning/jobs/{id}/resume': { body: 'none', object: use('fine_tuning_job') },
  'GET /fine_tuning/jobs/{id}/events': { body: 'none', object: use('fine_tuning_job') },
  'GET /fine_tuning/jobs/{id}/checkpoints': { body: 'none', object: use('fine_tuning_job') },

  'POST /containers': { body: 'json', references: true, object: create('container') },
  'GET /containers': { body: 'none', object: list('container') },
  'GET /containers/{id}': { body: 'none', object: use('container') },
  'DELETE /containers/{id}': { body: 'none', object: use('container') },
  'GET /containers/{id}/files': { body: 'none', object: use('container') },
  'POST /containers/{id}/files': { body: 'upload', references: true, object: use('container') },
  'GET /containers/{id}/files/{}': { body: 'none', object: use('container') },
  'DELETE /containers/{id}/files/{}': { body: 'none', object: use('container') },
  'GET /containers/{id}/files/{}/content': { body: 'none', object: use('container') },
};

/**
 * Paths that address one upstream's own layout (Azure deployments, a provider's path prefix):
 * a caller never chooses them — the gateway maps models to deployments itself.
 */
const UPSTREAM_SPECIFIC = new Set(['deployments', 'openai', 'engines']);

function endpointOf(name: string, spec: Spec): Endpoint {
  return Object.freeze({
    name,
    kind: spec.kind ?? 'other',
    body: spec.body ?? 'json',
    modelAt: spec.modelAt,
    defaultModel: spec.defaultModel,
    enforces: spec.enforces ?? FREE,
    object: spec.object,
    references: spec.references ?? false,
  });
}

interface Pattern {
  /** Literal segments, `{id}` or `{}`. */
  readonly segments: readonly string[];
  readonly method: string;
  readonly endpoint: Endpoint;
}

const EXACT = new Map<string, Endpoint>();
/** Patterns with ids, by method and segment count: a lookup compares a handful at most. */
const WITH_IDS = new Map<string, Pattern[]>();

for (const [key, spec] of Object.entries(TABLE)) {
  const [method, path] = key.split(' ') as [string, string];
  const endpoint = endpointOf(`${method} /v1${path}`, spec);
  if (!path.includes('{')) {
    EXACT.set(key, endpoint);
    continue;
  }
  const segments = path.slice(1).split('/');
  const bucket = `${method} ${segments.length}`;
  const patterns = WITH_IDS.get(bucket) ?? [];
  patterns.push({ segments, method, endpoint });
  WITH_IDS.set(bucket, patterns);
}

/** Every endpoint in the table, for the documentation test. */
export function knownEndpoints(): Endpoint[] {
  return [...EXACT.values(), ...[...WITH_IDS.values()].flat().map((pattern) => pattern.endpoint)];
}

export type Classified =
  | { readonly known: true; readonly endpoint: Endpoint; readonly id: string | undefined }
  | { readonly known: false; readonly upstreamSpecific: boolean };

/**
 * The endpoint a request addresses. `path` is canonical (http/canonical-path.ts) and below /v1,
 * without the query, e.g. `/files/file-abc/content`.
 */
export function classify(method: string, path: string): Classified {
  const exact = EXACT.get(`${method} ${path}`);
  if (exact !== undefined) return { known: true, endpoint: exact, id: undefined };
  const segments = path.slice(1).split('/');
  if (UPSTREAM_SPECIFIC.has(segments[0]!)) return { known: false, upstreamSpecific: true };
  const patterns = WITH_IDS.get(`${method} ${segments.length}`);
  if (patterns !== undefined) {
    for (const pattern of patterns) {
      let id: string | undefined;
      let matched = true;
      for (let i = 0; i < segments.length; i++) {
        const want = pattern.segments[i]!;
        const have = segments[i]!;
        if (want === '{id}') id ??= have;
        else if (want !== '{}' && want !== have) {
          matched = false;
          break;
        }
      }
      if (matched) return { known: true, endpoint: pattern.endpoint, id };
    }
  }
  return { known: false, upstreamSpecific: false };
}

/** The metering kind of a path (for callers that only need that). */
export function endpointKind(method: string, path: string): EndpointKind {
  const found = classify(method, path);
  return found.known ? found.endpoint.kind : 'other';
}
