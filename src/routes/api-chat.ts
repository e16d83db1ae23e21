import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Caller } from '../auth/authenticator.js';
import type { ChatDefaults, Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import { hijackForStream, SSE_HEADERS, writeChunk } from '../http/sse-response.js';
import { validateBody } from '../http/validate.js';
import type { RequestFinisher } from '../pipeline/finish.js';
import { ClientLeft, runPipeline, sendUpstream, type Prepared, type RouteAdapter } from '../pipeline/pipeline.js';
import type { CacheSubject } from '../pipeline/cache-step.js';
import { apiChatBody, buildUpstreamChat, type PersonaSetting, type UpstreamChatRequest } from '../policy/api-chat-request.js';
import { resolveAlias } from '../policy/model-rules.js';
import type { SseEvent } from '../streaming/sse-decoder.js';
import { SseUsageTap } from '../streaming/sse-usage-tap.js';
import { redactSecrets } from '../upstream/redact.js';
import { usageFromAnthropic, usageFromObject } from '../streaming/usage.js';
import { chatToMessagesRequest } from '../translate/chat-to-messages.js';
import { messageToChatCompletion } from '../translate/messages-to-chat-response.js';
import { anthropicAsChatChunks } from './chat-via-messages.js';
import type { UpstreamAnswer } from '../upstream/client.js';
import type { ActiveStreams } from '../http/active-streams.js';
import type { Conversations, OpenConversation } from '../conversations/conversations.js';
import { memorySettings } from '../conversations/memory-settings.js';
import { OWNER_SCOPE } from '../domain/conversation.js';
import type { Runtime, RuntimeParts } from '../runtime.js';
import { upstreamErrorMessage } from '../upstream/error-body.js';
import { upstreamFailure, type TimeoutSettings } from '../upstream/failure.js';

export interface ApiChatDeps {
  runtime: Runtime;
  finish: RequestFinisher;
  streams: ActiveStreams;
  conversations: Conversations;
}

interface ApiChatPrepared extends Prepared {
  outgoing: UpstreamChatRequest;
  stream: boolean;
  /** The conversation this turn belongs to, held until the request ends. */
  conversation: { open: OpenConversation; prompt: string } | undefined;
}

const SUCCESS = (data: string): string => JSON.stringify({ code: 200, data, msg: 'success' });

/** The answer text of a chat or legacy completion body. */
function answerText(kind: UpstreamChatRequest['kind'], body: unknown): string | undefined {
  const choice = (body as { choices?: Array<{ message?: { content?: unknown }; text?: unknown }> } | null)?.choices?.[0];
  const text = kind === 'chat' ? choice?.message?.content : choice?.text;
  return typeof text === 'string' ? text : undefined;
}

/** The text delta of one streamed chunk. */
function deltaText(kind: UpstreamChatRequest['kind'], chunk: unknown): string {
  const choice = (chunk as { choices?: Array<{ delta?: { content?: unknown }; text?: unknown }> } | null)?.choices?.[0];
  const text = kind === 'chat' ? choice?.delta?.content : choice?.text;
  return typeof text === 'string' ? text : '';
}

/**
 * The seed's chat body for an Anthropic upstream: its sampling values are the owner's defaults,
 * not the caller's choice, so what Anthropic lacks (repetition penalties) is left out and the
 * temperature kept within Anthropic's 0–1.
 */
function forAnthropic(body: UpstreamChatRequest['body']): UpstreamChatRequest['body'] {
  const { frequency_penalty: _frequency, presence_penalty: _presence, ...rest } = body as Record<string, unknown>;
  if (typeof rest.temperature === 'number' && rest.temperature > 1) rest.temperature = 1;
  return rest as UpstreamChatRequest['body'];
}

/** The owner's defaults with the caller key's own defaults over them (the key wins where it sets a value). */
function defaultsFor(global: ChatDefaults, caller: Caller): { defaults: ChatDefaults; persona: PersonaSetting } {
  const key = caller.key;
  const own = key?.defaults;
  const defaults: ChatDefaults = own
    ? {
        botDesc: global.botDesc,
        model: own.model ?? global.model,
        maxTokens: own.max_tokens ?? global.maxTokens,
        temperature: own.temperature ?? global.temperature,
        topP: own.top_p ?? global.topP,
        frequencyPenalty: own.frequency_penalty ?? global.frequencyPenalty,
        presencePenalty: own.presence_penalty ?? global.presencePenalty,
      }
    : global;
  return { defaults, persona: key?.persona ?? { text: global.botDesc, mode: 'prepend' } };
}

/** How this route's event stream ends when it is whole: the `done` event with the envelope. */
const DONE_EVENT = Buffer.from('event: done\n');

/**
 * What a /api/chat answer depends on, for the response cache: the chat or completion body the
 * gateway built (persona, defaults, ceiling and alias applied) and whether it streams. The
 * envelope differs from /v1's answer, so the route is part of the key.
 */
function cacheSubject(_request: FastifyRequest, prepared: ApiChatPrepared): CacheSubject {
  const { outgoing, stream } = prepared;
  const body = outgoing.body as Record<string, unknown>;
  // A conversation's turn must reach the upstream and be remembered, not be replayed.
  const refusal = prepared.conversation === undefined ? undefined : 'a conversation turn';
  return { route: `POST /api/chat ${outgoing.path}`, stream, variant: '', body, refusal, complete: stream ? (bytes) => bytes.lastIndexOf(DONE_EVENT) >= 0 : () => true };
}

/**
 * The seed's endpoint: `{"prompt": "..."}` in, `{"code":200,"data":"<answer>","msg":"success"}` out,
 * errors in the same envelope with HTTP 200. Registered at /api/chat and /ai/chat.
 */
export function apiChatRoutes(app: FastifyInstance, startConfig: Config, deps: ApiChatDeps): void {
  const { runtime, finish, streams, conversations } = deps;
  /**
   * The conversation a request names, held (its earlier turns on this instance answered first)
   * with the history that fits the key's memory settings; undefined with memory off.
   */
  async function openConversation(request: FastifyRequest, reply: FastifyReply, config: Config, caller: Caller, id: string, model: string): Promise<OpenConversation | undefined> {
    const settings = memorySettings(config.memory, caller.key?.memory);
    if (!settings.enabled) return undefined;
    // Callers without an app key (access tokens, the open mode) share the owner's conversations.
    const open = await conversations.open({ keyId: caller.key?.id ?? OWNER_SCOPE, conversationId: id }, settings, model);
    if (request.ctx.aborted || reply.raw.destroyed) {
      open.release();
      throw new ClientLeft();
    }
    // Released when the response is over, whichever way: answered (the turn stored before the
    // reply), failed, refused or cut. Nothing is added to requests without a conversation.
    reply.raw.once('close', open.release);
    return open;
  }

  async function prepare(request: FastifyRequest, reply: FastifyReply, parts: RuntimeParts, caller: Caller): Promise<ApiChatPrepared> {
    const ctx = request.ctx;
    const { config } = parts;
    if (request.body === null || typeof request.body !== 'object' || Array.isArray(request.body)) {
      throw new GatewayError('invalid_request', 'Body must be a JSON object such as {"prompt": "Hello"}.');
    }
    const body = validateBody(apiChatBody, request.body);
    const { defaults, persona } = defaultsFor(config.defaults, caller);
    const model = resolveAlias(body.model ?? defaults.model, config.modelAlias);
    const ceiling = caller.key?.maxTokensCeiling;
    if (ceiling !== undefined) body.max_tokens = Math.min(body.max_tokens ?? defaults.maxTokens, ceiling);
    ctx.model = model;
    let open: OpenConversation | undefined;
    if (body.conversation_id !== undefined) {
      ctx.conversationId = body.conversation_id;
      open = await openConversation(request, reply, config, caller, body.conversation_id, model);
    }
    const history = open?.history.flatMap((turn) => [{ role: 'user', content: turn.prompt }, { role: 'assistant', content: turn.answer }]);
    const outgoing = buildUpstreamChat(body, defaults, persona, model, history);
    ctx.kind = outgoing.kind === 'chat' ? 'chat' : 'completions';
    ctx.body = outgoing.body;
    // The schema requires a prompt with conversation_id.
    return { admitModel: model, outgoing, stream: body.stream === true, conversation: open && { open, prompt: body.prompt ?? '' } };
  }

  /**
   * Stores a conversation's turn once its answer is complete, unless the client left before it.
   * An empty answer is not a turn worth replaying (and Anthropic refuses an empty message).
   */
  async function remember(request: FastifyRequest, prepared: ApiChatPrepared, answer: string): Promise<void> {
    if (prepared.conversation === undefined || request.ctx.aborted || answer.trim() === '') return;
    await prepared.conversation.open.remember(prepared.conversation.prompt, answer);
  }

  async function exchange(request: FastifyRequest, reply: FastifyReply, parts: RuntimeParts, prepared: ApiChatPrepared): Promise<number> {
    const ctx = request.ctx;
    const { config, upstreams } = parts;
    const { outgoing, stream } = prepared;
    // A chat model only an Anthropic upstream serves: the same request as a Messages request, the answer read back as chat.
    const protocols = outgoing.kind === 'chat' ? upstreams.protocolsFor(outgoing.model) : undefined;
    const viaMessages = protocols !== undefined && !protocols.openai && protocols.anthropic;
    const answer = await sendUpstream(request, parts, {
      model: outgoing.model,
      method: 'POST',
      path: viaMessages ? '/messages' : outgoing.path,
      headers: { 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json' },
      body: JSON.stringify(viaMessages ? chatToMessagesRequest(forAnthropic(outgoing.body), { model: outgoing.model, stream }) : outgoing.body),
      protocol: viaMessages ? 'anthropic' : 'openai',
    });
    const { response } = answer;
    reply.header('x-openai-api-upstream', answer.upstream);
    reply.header('x-openai-api-attempts', String(answer.attempts));

    if (response.statusCode >= 400) {
      const text = await response.body.text().catch(() => '');
      throw new GatewayError('upstream_error', `Upstream "${answer.upstream}" answered ${response.statusCode}: ${upstreamErrorMessage(response.statusCode, text, upstreams.secrets())}`);
    }

    if (stream) {
      const contentType = String(response.headers['content-type'] ?? '');
      if (!contentType.startsWith('text/event-stream')) {
        // Decoding it as a stream would find no events and report an empty answer as a success.
        await response.body.dump().catch(() => undefined);
        throw new GatewayError('upstream_error', `Upstream "${answer.upstream}" answered a stream request with ${JSON.stringify(contentType.slice(0, 100) || 'no content type')}, not an event stream.`);
      }
      const source = viaMessages ? anthropicAsChatChunks(response.body, outgoing.model) : response.body;
      return relayAsEnvelopeStream(request, reply, prepared, answer, source, upstreams.secrets(), config.upstream, config.log.bodies);
    }

    let parsed: unknown;
    try {
      parsed = await response.body.json();
    } catch (error) {
      if (error instanceof SyntaxError) throw new GatewayError('upstream_error', `Upstream "${answer.upstream}" sent a body that is not JSON.`);
      throw upstreamFailure(error, answer.upstream, config.upstream);
    }
    if (viaMessages) {
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new GatewayError('upstream_error', `Upstream "${answer.upstream}" sent a body that is not a message.`);
      ctx.usage = usageFromAnthropic((parsed as { usage?: unknown }).usage);
      parsed = messageToChatCompletion(parsed as Record<string, unknown>, outgoing.model);
    } else {
      ctx.usage = usageFromObject(parsed);
    }
    const text = answerText(outgoing.kind, parsed);
    if (text === undefined) throw new GatewayError('upstream_error', `Upstream "${answer.upstream}" sent no answer text (no choices[0]).`);
    if (config.log.bodies) request.log.info({ request_body: outgoing.body, answer: text }, 'bodies');
    // Stored before the answer goes out: a bot's next message, sent on receipt, finds it in any instance.
    await remember(request, prepared, text);
    reply.header('content-type', 'application/json; charset=utf-8').send(SUCCESS(text));
    return 200;
  }

  const route: RouteAdapter<ApiChatPrepared> = { format: 'envelope', prepare, exchange, discard: () => undefined, cacheSubject };
  const handler = (request: FastifyRequest, reply: FastifyReply): Promise<void> => runPipeline(request, reply, runtime.current, route, finish);

  /** Streams text deltas as `data: {"delta": "..."}` events, then `event: done` with the whole answer in the envelope. */
  async function relayAsEnvelopeStream(request: FastifyRequest, reply: FastifyReply, prepared: ApiChatPrepared, answer: UpstreamAnswer, source: AsyncIterable<Uint8Array>, secrets: readonly string[], timeouts: TimeoutSettings, logBodies: boolean): Promise<number> {
    const ctx = request.ctx;
    const kind = prepared.outgoing.kind;
    const client = hijackForStream(reply, 200, SSE_HEADERS);
    let text = '';
    ctx.textSeen = () => text;
    let failure: GatewayError | undefined;
    // The tap finds [DONE], the usage and error events, as on /v1; this route turns the deltas into envelope events.
    const events: SseEvent[] = [];
    const tap = new SseUsageTap({ dropUsageEvent: false, onEvent: (event) => events.push(event) });
    const unregister = streams.add((error) => answer.response.body.destroy(error));
    const render = async (): Promise<void> => {
      for (const event of events) {
        if (event.data === '[DONE]') continue;
        let parsed: unknown;
        try {
          parsed = JSON.parse(event.data);
        } catch {
          continue;
        }
        const delta = deltaText(kind, parsed);
        if (delta === '') continue;
        text += delta;
        ctx.firstByteAt ??= performance.now();
        await writeChunk(client, `data: ${JSON.stringify({ delta })}\n\n`);
      }
      events.length = 0;
    };
    try {
      for await (const chunk of source) {
        tap.push(chunk as Buffer);
        // The deltas before an error event still reach the client (an error event has none).
        await render();
        if (tap.upstreamError) break;
      }
      if (!tap.upstreamError) {
        tap.end();
        await render();
      }
      const upstreamError = tap.upstreamError;
      if (upstreamError) failure = new GatewayError('upstream_error', `Upstream "${answer.upstream}" failed mid-stream: ${redactSecrets(upstreamError.message, secrets)}`);
      // A clean close before [DONE] is a cut answer, not a short one.
      else if (!tap.sawDone) failure = new GatewayError('upstream_error', `Upstream "${answer.upstream}" ended the stream before it was complete.`);
    } catch (error) {
      failure = upstreamFailure(error, answer.upstream, timeouts);
    }
    ctx.usage = tap.usage;
    unregister();
    if (client.destroyed) {
      ctx.aborted = true;
      return 499;
    }
    if (failure) throw failure;
    if (logBodies) request.log.info({ request_body: ctx.body, answer: text }, 'bodies');
    // The stream is complete: the turn is stored before `done` tells the bot so.
    await remember(request, prepared, text);
    client.end(`event: done\ndata: ${SUCCESS(text)}\n\n`);
    return 200;
  }

  for (const url of ['/api/chat', '/ai/chat']) {
    // The body limit is fixed when the route is registered: changing body_limit needs a restart.
    app.post(url, { config: { errorFormat: 'envelope' }, bodyLimit: startConfig.server.bodyLimit }, handler);
  }
}
