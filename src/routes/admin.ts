import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { IncomingHttpHeaders } from 'node:http';
import { USAGE_GROUPINGS, type LatencyAnswer, type StatusAnswer } from '../admin/console-types.js';
import { splitClears } from '../admin/key-patch.js';
import { latencyOf } from '../admin/latency.js';
import { carriesCsrfToken, CSRF_HEADER, fromSameOrigin, type ConsoleSession, type ConsoleSessions } from '../admin/session.js';
import { AccessTokens } from '../auth/access-tokens.js';
import { attributesToSettings } from '../auth/key-attributes.js';
import { generateKeySecret, hashKeySecret, keyPrefix } from '../auth/key-secret.js';
import { publicKey } from '../auth/public-key.js';
import { keyAttributesSchema, keyNameSchema } from '../config/key-entry.js';
import { GatewayError } from '../errors/index.js';
import { presentedKey } from '../auth/bearer.js';
import { validateBody } from '../http/validate.js';
import type { LimitStore } from '../limits/index.js';
import type { RecentRequests } from '../pipeline/request-log.js';
import type { KeysRepository, AppKeyRow } from '../storage/keys-repository.js';
import { StorageError } from '../storage/storage-error.js';
import type { UsageRepository } from '../storage/usage-repository.js';
import type { Conversations } from '../conversations/conversations.js';
import { conversationView, pathConversationId } from './conversations.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** An admin-listener route open without the admin token or a console session (the console's page and sign-in). */
    adminPublic?: boolean;
  }
}

export interface AdminDeps {
  token: string;
  keys: KeysRepository;
  usage: UsageRepository;
  limits: LimitStore;
  /** Conversations of /api/chat, per key (issue 16). */
  conversations?: Conversations;
  /** Writes queued usage records, so budgets reloaded after a change see every request so far. */
  flushUsage: () => Promise<void>;
  /** Reloads the in-memory key cache after key `id` changed, so it applies to the next request (here and, with Redis, on every instance). */
  keysChanged: (id: string) => Promise<void>;
  /** Re-reads config.json and the environment and applies them (undefined when the gateway was built without a config source). */
  reload: (() => Promise<{ ok: boolean; error?: string; needsRestart: string[] }>) | undefined;
  /** Extra read-only state (upstreams, storage health) for GET /admin/status. */
  status: () => StatusAnswer;
  /** The web console's sign-ins, accepted beside the Bearer token (undefined: token only). */
  sessions?: ConsoleSessions;
  /** The last finished requests, for GET /admin/requests. */
  recentRequests?: RecentRequests;
}

const requestsQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).optional() }).strict();

/**
 * A change made with the session cookie must come from the console's own page: same origin
 * (Origin / Sec-Fetch-Site) and the session's CSRF token in a header no other site can set.
 */
export function assertConsoleChange(headers: IncomingHttpHeaders, session: ConsoleSession): void {
  if (!fromSameOrigin(headers)) throw new GatewayError('csrf_refused', 'Cross-site request refused.');
  if (!carriesCsrfToken(headers, session)) throw new GatewayError('csrf_refused', `Missing or wrong ${CSRF_HEADER} header.`);
}

const createBody = keyAttributesSchema.extend({ name: keyNameSchema }).strict();
const usageQuery = z
  .object({
    key: z.string().optional(),
    upstream: z.string().optional(),
    since: z.string().refine((v) => !Number.isNaN(Date.parse(v)), { message: 'must be an ISO-8601 date' }).optional(),
    until: z.string().refine((v) => !Number.isNaN(Date.parse(v)), { message: 'must be an ISO-8601 date' }).optional(),
    by: z.enum(USAGE_GROUPINGS).optional(),
  })
  .strict();
const latencyQuery = z
  .object({ since: z.string().refine((v) => !Number.isNaN(Date.parse(v)), { message: 'must be an ISO-8601 date' }).optional() })
  .strict();

/** A repository failure as a catalogue error; `name` is the key the call was about, if any. */
function storageFailure(error: StorageError, name: string | undefined): GatewayError {
  if (error.code === 'conflict' && name !== undefined) return new GatewayError('conflict', `A key named "${name}" already exists.`);
  if (error.code === 'not_found' && name !== undefined) return new GatewayError('not_found', `No key named "${name}".`);
  return new GatewayError('storage_unavailable', 'The key database is unavailable.', { cause: error });
}

/**
 * Waits for a repository call, turning a StorageError into a catalogue error. Anything else is a
 * bug, left to the server's error handler (logged, answered `internal_error`).
 */
function stored<T>(work: Promise<T>, name?: string): Promise<T> {
  return work.catch((error: unknown) => {
    throw error instanceof StorageError ? storageFailure(error, name) : error;
  });
}

/**
 * The admin API under /admin/: JSON in and out, guarded by `admin_token`, served on its own
 * listener (loopback unless `admin_host` says otherwise). Secrets are shown once, at creation
 * and rotation; hashes never. Errors are GatewayErrors, rendered like /v1's (OpenAI's shape).
 */
export function adminRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const token = new AccessTokens([deps.token]);

  app.addHook('onRequest', async (request, reply) => {
    // The console's sign-in page and its bundle (routes/console.ts) are open; everything else is not.
    if (request.routeOptions.config?.adminPublic === true) return;
    const presented = presentedKey(request.headers);
    if (presented !== undefined) {
      if (token.match(presented) < 0) throw new GatewayError('invalid_api_key', 'Invalid admin token.');
      return;
    }
    // The console's own calls: its session cookie, and for a change, proof the page sent it.
    const session = deps.sessions?.fromHeaders(request.headers);
    if (session === undefined) throw new GatewayError('missing_api_key', 'Missing admin token: send "Authorization: Bearer <admin_token>".');
    reply.header('cache-control', 'no-store');
    if (request.method !== 'GET' && request.method !== 'HEAD') assertConsoleChange(request.headers, session);
  });

  async function existing(name: string): Promise<AppKeyRow> {
    const row = await stored(deps.keys.getByName(name), name);
    if (!row) throw new GatewayError('not_found', `No key named "${name}".`);
    return row;
  }

  async function managedHere(name: string): Promise<AppKeyRow> {
    const row = await existing(name);
    if (row.source === 'config') throw new GatewayError('conflict', `Key "${name}" is declared in config.json; change it there.`);
    return row;
  }

  const changed = async (row: AppKeyRow): Promise<void> => {
    await deps.flushUsage();
    deps.limits.forget(row.id);
    await deps.keysChanged(row.id);
  };

  app.get('/admin/keys', async () => ({ data: (await stored(deps.keys.list())).map(publicKey) }));

  app.post('/admin/keys', async (request, reply) => {
    const body = validateBody(createBody, request.body);
    const { name, ...attributes } = body;
    const secret = generateKeySecret();
    const row = await stored(deps.keys.create({ ...attributesToSettings(attributes), name, keyHash: hashKeySecret(secret), keyPrefix: keyPrefix(secret), source: 'admin' }), name);
    await changed(row);
    return reply.code(201).send({ ...publicKey(row), key: secret });
  });

  app.get<{ Params: { name: string } }>('/admin/keys/:name', async (request) => publicKey(await existing(request.params.name)));

  app.patch<{ Params: { name: string } }>('/admin/keys/:name', async (request) => {
    // `"rpm": null` (and the like) clears an attribute; the rest is checked as at creation.
    const { set, cleared } = splitClears(request.body);
    const attributes = validateBody(keyAttributesSchema, set);
    const name = request.params.name;
    await managedHere(name);
    const row = await stored(deps.keys.update(name, { ...attributesToSettings(attributes), ...cleared }), name);
    await changed(row);
    return publicKey(row);
  });

  for (const [action, enabled] of [['enable', true], ['disable', false]] as const) {
    app.post<{ Params: { name: string } }>(`/admin/keys/:name/${action}`, async (request) => {
      const name = request.params.name;
      await managedHere(name);
      const row = await stored(deps.keys.update(name, { enabled }), name);
      await changed(row);
      return publicKey(row);
    });
  }

  app.post<{ Params: { name: string } }>('/admin/keys/:name/rotate', async (request) => {
    const name = request.params.name;
    await managedHere(name);
    const secret = generateKeySecret();
    const row = await stored(deps.keys.replaceSecret(name, hashKeySecret(secret), keyPrefix(secret)), name);
    await changed(row);
    return { ...publicKey(row), key: secret };
  });

  app.delete<{ Params: { name: string } }>('/admin/keys/:name', async (request, reply) => {
    const name = request.params.name;
    const row = await managedHere(name);
    await stored(deps.keys.delete(name), name);
    await changed(row);
    return reply.code(204).send();
  });

  // A key's /api/chat conversations (issue 16): listed, shown, forgotten.
  function conversationsOf(): Conversations {
    if (deps.conversations === undefined) throw new GatewayError('not_found', 'Conversations are not available on this gateway.');
    return deps.conversations;
  }
  app.get<{ Params: { name: string } }>('/admin/keys/:name/conversations', async (request) => {
    const row = await existing(request.params.name);
    const list = await conversationsOf().list(row.id);
    return { data: list.map((c) => ({ conversation_id: c.id, turns: c.turns, created_at: c.createdAt.toISOString(), last_at: c.lastAt.toISOString(), expires_at: c.expiresAt.toISOString() })) };
  });
  app.get<{ Params: { name: string; '*': string } }>('/admin/keys/:name/conversations/*', async (request) => {
    const row = await existing(request.params.name);
    const conversationId = pathConversationId(request.params['*']);
    const found = await conversationsOf().get({ keyId: row.id, conversationId });
    if (found === undefined) throw new GatewayError('conversation_not_found', `Key "${row.name}" has no conversation ${JSON.stringify(conversationId)}.`);
    return conversationView(found.summary, found.turns);
  });
  app.delete<{ Params: { name: string; '*': string } }>('/admin/keys/:name/conversations/*', async (request, reply) => {
    const row = await existing(request.params.name);
    const conversationId = pathConversationId(request.params['*']);
    if (!(await conversationsOf().forget({ keyId: row.id, conversationId }))) throw new GatewayError('conversation_not_found', `Key "${row.name}" has no conversation ${JSON.stringify(conversationId)}.`);
    return reply.code(204).send();
  });

  app.get('/admin/usage', async (request: FastifyRequest) => {
    const query = validateBody(usageQuery, request.query);
    const rows = await stored(deps.usage.report({ keyName: query.key, upstream: query.upstream, since: query.since ? new Date(query.since) : undefined, until: query.until ? new Date(query.until) : undefined, by: query.by ?? 'key' }));
    return { data: rows };
  });

  app.get('/admin/status', async () => deps.status());

  // p50/p95 of total time, overhead and upstream time over the finished requests kept in memory.
  app.get('/admin/latency', async (request: FastifyRequest): Promise<LatencyAnswer> => {
    const { since } = validateBody(latencyQuery, request.query);
    return latencyOf(deps.recentRequests?.latest() ?? [], since === undefined ? new Date(0) : new Date(since));
  });

  app.get('/admin/requests', async (request: FastifyRequest) => {
    const { limit } = validateBody(requestsQuery, request.query);
    return { data: deps.recentRequests?.latest(limit) ?? [] };
  });

  app.post('/admin/reload', async () => {
    if (!deps.reload) throw new GatewayError('not_found', 'Reload is not available for this gateway.');
    let result: { ok: boolean; error?: string; needsRestart: string[] };
    try {
      result = await deps.reload();
    } catch (error) {
      // A bad new config (ConfigError) is refused; the old configuration keeps serving.
      result = { ok: false, error: (error as Error).message, needsRestart: [] };
    }
    if (!result.ok) throw new GatewayError('reload_refused', `Reload refused, the previous configuration keeps serving: ${result.error ?? 'no reason given'}`);
    return { ok: true, needs_restart: result.needsRestart };
  });

}
