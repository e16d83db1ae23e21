import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { Caller } from '../auth/authenticator.js';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import { encodeCallForm, parseCallForm } from '../http/call-form.js';
import { assertJsonDepth } from '../http/json-depth.js';
import { readMultipartModel } from '../http/multipart-model.js';
import { ByteLimit, declaredLength, readBody, tooLarge } from '../http/read-body.js';
import type { Endpoint } from '../policy/endpoints.js';
import { checkedModel, MAX_MODEL_BYTES } from '../policy/model-name.js';
import { resolveAlias } from '../policy/model-rules.js';
import { keyPolicyOf, prepareV1Body } from '../policy/v1-body.js';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\b/i;
const MULTIPART_TYPE = /^multipart\/form-data\b/i;
const JSON_CONTENT_TYPE = 'application/json';
const SDP_TYPE = /^application\/sdp\s*(?:;|$)/i;
/** A Realtime call form is an SDP offer (a few KiB) and a session object: read whole, at most this. */
const CALL_BODY_LIMIT = 1024 * 1024;

/** A /v1 request body as it goes upstream, and what the gateway learned from it. */
export interface V1Body {
  body: Buffer | string | Readable | null;
  contentLength: number | undefined;
  /** Replaces the caller's Content-Type (a JSON body labelled otherwise goes on as JSON). */
  contentType: string | undefined;
  /** The parsed JSON object, when the body is one. */
  json: Record<string, unknown> | undefined;
  stream: boolean;
  /** The gateway added `stream_options.include_usage`; the usage event must not reach the client. */
  usageInjected: boolean;
  /** Set by the streaming body counter when an upload passes the limit. */
  exceeded: () => boolean;
}

export interface V1BodyOptions {
  config: Config;
  /** Whether the upstreams serving this model accept `stream_options.include_usage`. */
  includeUsage: (model: string | undefined) => boolean;
  limit: number;
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

function parseJson(bytes: Buffer, what: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new GatewayError('invalid_json', `The body of ${what} is not valid JSON (the endpoint takes JSON, whatever the Content-Type says): ${(error as Error).message.replace(/\s+/g, ' ').slice(0, 200)}`);
  }
  assertJsonDepth(parsed);
  return parsed;
}

/**
 * Reads a /v1 body the way its endpoint takes it, whatever the caller's Content-Type says: JSON
 * endpoints parse it (sniffed, not trusted from the label), multipart endpoints read the `model`
 * field while the upload streams through, upload endpoints stream it, body-less endpoints drop
 * it. The model goes to `request.ctx.model` (aliases and key defaults applied). A body the
 * gateway changed — or that a model-restricted key sent — is forwarded as the gateway parsed
 * it, so the upstream cannot read another model out of it than the one checked.
 */
export async function readV1Body(request: FastifyRequest, caller: Caller, endpoint: Endpoint | undefined, options: V1BodyOptions): Promise<V1Body> {
  const { config, limit } = options;
  const raw = request.raw;
  const ctx = request.ctx;
  const out: V1Body = { body: null, contentLength: undefined, contentType: undefined, json: undefined, stream: false, usageInjected: false, exceeded: () => false };
  const declared = declaredLength(raw);
  const hasBody = BODY_METHODS.has(request.method) && (declared === undefined ? raw.headers['transfer-encoding'] !== undefined : declared > 0);
  if (!hasBody) return out;
  if (declared !== undefined && declared > limit) throw tooLarge(limit);
  const contentType = request.headers['content-type'] ?? '';
  const shape = endpoint?.body ?? (JSON_TYPE.test(contentType) ? 'json' : 'upload');

  if (shape === 'none') {
    // Read so the connection stays usable, never forwarded: these endpoints take no body.
    await readBody(raw, limit);
    return out;
  }
  if (shape === 'call') return readCallBody(request, caller, endpoint!, out, { config, limit: Math.min(limit, CALL_BODY_LIMIT), contentType });
  if (shape === 'multipart' && MULTIPART_TYPE.test(contentType)) {
    const { model, body } = await readMultipartModel(raw, contentType, { limit, maxModelBytes: MAX_MODEL_BYTES });
    ctx.model = model === undefined ? undefined : resolveAlias(model, config.modelAlias);
    out.body = body;
    out.contentLength = declared;
    if (declared === undefined) {
      let exceeded = false;
      out.body = body.pipe(new ByteLimit(limit, () => (exceeded = true)));
      out.exceeded = () => exceeded;
    }
    return out;
  }
  if (shape === 'upload' && (endpoint === undefined || MULTIPART_TYPE.test(contentType))) {
    // Uploads (files, upload parts, and anything not JSON to an unknown endpoint) stream through;
    // a declared length is enforced above, a chunked one is counted on the way.
    if (declared !== undefined) {
      out.body = raw;
      out.contentLength = declared;
    } else {
      let exceeded = false;
      out.body = raw.pipe(new ByteLimit(limit, () => (exceeded = true)));
      out.exceeded = () => exceeded;
    }
    return out;
  }

  // JSON (also an upload endpoint's non-multipart body, which may name objects by id): read once —
  // routing, limits, ownership and metering need what it says.
  const bytes = await readBody(raw, limit);
  const parsed = parseJson(bytes, endpoint?.name ?? `${request.method} /v1 requests`);
  ctx.body = parsed;
  // Opt-in only (log_bodies): prompts can hold anything the caller's users typed.
  if (config.log.bodies) request.log.info({ request_body: parsed }, 'bodies');
  const labelledJson = JSON_TYPE.test(contentType);
  if (!isObject(parsed)) {
    out.body = bytes;
    out.contentLength = bytes.length;
    out.contentType = labelledJson ? undefined : JSON_CONTENT_TYPE;
    return out;
  }
  out.json = parsed;
  const modelAt = endpoint === undefined ? 'model' : endpoint.modelAt;
  let body: Buffer | string = bytes;
  if (modelAt === 'model') {
    checkedModel(parsed.model);
    const prepared = prepareV1Body(endpoint?.kind ?? 'other', bytes, parsed, {
      modelAlias: config.modelAlias,
      defaults: config.v1Defaults ? config.defaults : undefined,
      key: keyPolicyOf(caller.key),
      includeUsage: options.includeUsage,
    });
    ctx.model = checkedModel(prepared.model);
    body = prepared.body;
    out.stream = prepared.stream;
    out.usageInjected = prepared.usageInjected;
  } else if (modelAt === 'session.model') {
    const session = parsed.session;
    ctx.model = checkedModel(isObject(session) ? session.model : undefined, 'session.model');
  }
  // The parsed form is what was checked: send that when the key's model list depends on it.
  if (typeof body !== 'string' && (caller.key?.models !== undefined || !labelledJson)) body = JSON.stringify(parsed);
  out.body = body;
  out.contentLength = Buffer.byteLength(body);
  out.contentType = labelledJson ? undefined : JSON_CONTENT_TYPE;
  return out;
}

/**
 * `POST /v1/realtime/calls` (the `call` shape): a multipart form is read whole and its
 * `session.model` checked; a raw `application/sdp` offer names no model, so it passes only where
 * no model list must hold. A key with a model list (or an alias that renamed the model) gets the
 * form re-encoded from what was parsed — `sdp` and `session`, nothing else — so the upstream reads
 * the checked model and no other field; anyone else's form goes on as sent.
 */
async function readCallBody(request: FastifyRequest, caller: Caller, endpoint: Endpoint, out: V1Body, options: { config: Config; limit: number; contentType: string }): Promise<V1Body> {
  const { config, limit, contentType } = options;
  const raw = request.raw;
  const key = caller.key;
  // The table's row has no ids, so its name is the canonical path a grant is matched against.
  const granted = key?.endpoints?.allows(request.method, endpoint.name.slice(request.method.length + 1)) === true;
  // Once granted, a model the gateway reads is still checked, but none is required (SECURITY.md).
  const modelRequired = (): GatewayError =>
    new GatewayError('invalid_request', `Key "${key!.name}" may use only some models: send the call as multipart/form-data with the SDP offer in "sdp" and the session, naming its "model", as JSON in "session".`, { param: 'session.model' });
  const isForm = MULTIPART_TYPE.test(contentType);
  if (!isForm && !SDP_TYPE.test(contentType)) {
    raw.resume();
    throw new GatewayError('invalid_content_type', `${endpoint.name} takes multipart/form-data (fields "sdp" and "session") or application/sdp, not "${contentType.slice(0, 64)}".`);
  }
  if (!isForm && key?.models !== undefined && !granted) {
    raw.resume();
    throw modelRequired();
  }
  const bytes = await readBody(raw, limit);
  out.body = bytes;
  out.contentLength = bytes.length;
  if (!isForm) return out;

  const form = await parseCallForm(bytes, contentType);
  // Opt-in only (log_bodies); the offer stays out, its candidates are the caller's addresses.
  if (config.log.bodies && form.session !== undefined) request.log.info({ request_body: { session: form.session } }, 'bodies');
  const sent = checkedModel(form.session?.model, 'session.model');
  const model = sent === undefined ? undefined : resolveAlias(sent, config.modelAlias);
  request.ctx.model = model;
  if (model === undefined && key?.models !== undefined && !granted) throw modelRequired();
  if (key?.models !== undefined || model !== sent) {
    const encoded = encodeCallForm({ sdp: form.sdp, session: model === sent ? form.session : { ...form.session, model } });
    out.body = encoded.body;
    out.contentLength = encoded.body.length;
    out.contentType = encoded.contentType;
  }
  return out;
}
