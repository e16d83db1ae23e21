import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { Authenticator } from '../auth/authenticator.js';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import { logRequest } from '../http/request-log.js';
import { hijackForStream, SSE_HEADERS, writeChunk } from '../http/sse-response.js';
import { validateBody } from '../http/validate.js';
import { apiChatBody, buildUpstreamChat, type UpstreamChatRequest } from '../policy/api-chat-request.js';
import { resolveAlias } from '../policy/model-rules.js';
import { SseDecoder, type SseEvent } from '../streaming/sse-decoder.js';
import { upstreamErrorMessage } from '../upstream/error-body.js';
import { upstreamFailure } from '../upstream/failure.js';
import { sendUpstream } from '../upstream/send.js';
import type { Upstream } from '../upstream/upstream.js';

export interface ApiChatDeps {
  config: Config;
  auth: Authenticator;
  upstream: Upstream;
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
 * The seed's endpoint: `{"prompt": "..."}` in, `{"code":200,"data":"<answer>","msg":"success"}` out,
 * errors in the same envelope with HTTP 200. Registered at /api/chat and /ai/chat.
 */
export function apiChatRoutes(app: FastifyInstance, deps: ApiChatDeps): void {
  const { config, auth, upstream } = deps;
  const timeouts = config.upstream;
  const secrets = upstream.keys.all();

  async function handler(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | void> {
    request.ctx.caller = auth.authenticate(request.headers).name;
    if (request.body === null || typeof request.body !== 'object' || Array.isArray(request.body)) {
      throw new GatewayError('invalid_request', 'Body must be a JSON object such as {"prompt": "Hello"}.');
    }
    const body = validateBody(apiChatBody, request.body);
    const model = resolveAlias(body.model ?? config.defaults.model, config.modelAlias);
    request.ctx.model = model;
    request.ctx.upstream = upstream.name;
    const outgoing = buildUpstreamChat(body, config.defaults, { text: config.defaults.botDesc, mode: 'prepend' }, model);

    const abort = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    reply.raw.once('close', onClose);

    const sentAt = performance.now();
    let response: Dispatcher.ResponseData;
    try {
      response = await sendUpstream(
        upstream,
        { method: 'POST', path: outgoing.path, headers: { 'content-type': 'application/json', accept: body.stream ? 'text/event-stream' : 'application/json' }, body: JSON.stringify(outgoing.body), signal: abort.signal },
        upstream.keys.next(),
        timeouts,
      );
    } catch (error) {
      throw upstreamFailure(error, upstream.name, timeouts);
    }
    request.ctx.upstreamMs = performance.now() - sentAt;

    if (response.statusCode >= 400) {
      const text = await response.body.text().catch(() => '');
      throw new GatewayError('upstream_error', `Upstream "${upstream.name}" answered ${response.statusCode}: ${upstreamErrorMessage(response.statusCode, text, secrets)}`);
    }

    if (body.stream === true) return relayAsEnvelopeStream(request, reply, outgoing.kind, response);

    let parsed: unknown;
    try {
      parsed = await response.body.json();
    } catch (error) {
      if (error instanceof SyntaxError) throw new GatewayError('upstream_error', `Upstream "${upstream.name}" sent a body that is not JSON.`);
      throw upstreamFailure(error, upstream.name, timeouts);
    }
    const text = answerText(outgoing.kind, parsed);
    if (text === undefined) throw new GatewayError('upstream_error', `Upstream "${upstream.name}" sent no answer text (no choices[0]).`);
    return reply.header('content-type', 'application/json; charset=utf-8').send(SUCCESS(text));
  }

  /** Streams text deltas as `data: {"delta": "..."}` events, then `event: done` with the whole answer in the envelope. */
  async function relayAsEnvelopeStream(request: FastifyRequest, reply: FastifyReply, kind: UpstreamChatRequest['kind'], response: Dispatcher.ResponseData): Promise<void> {
    const client = hijackForStream(reply, 200, SSE_HEADERS);
    const decoder = new SseDecoder();
    let answer = '';
    let failure: GatewayError | undefined;
    try {
      const chunks = async function* (): AsyncGenerator<SseEvent[]> {
        for await (const chunk of response.body) yield decoder.push(chunk as Buffer);
        yield decoder.end();
      };
      for await (const events of chunks()) {
        for (const event of events) {
          if (event.data === '[DONE]') continue;
          let parsed: unknown;
          try {
            parsed = JSON.parse(event.data);
          } catch {
            continue;
          }
          const upstreamError = (parsed as { error?: { message?: unknown } }).error;
          if (upstreamError) {
            failure = new GatewayError('upstream_error', `Upstream "${upstream.name}" failed mid-stream: ${upstreamErrorMessage(502, JSON.stringify(parsed), secrets)}`);
            break;
          }
          const delta = deltaText(kind, parsed);
          if (delta === '') continue;
          answer += delta;
          await writeChunk(client, `data: ${JSON.stringify({ delta })}\n\n`);
        }
        if (failure) break;
      }
    } catch (error) {
      failure = upstreamFailure(error, upstream.name, timeouts);
    }
    if (client.destroyed) {
      logRequest(request, 499, { aborted: true });
      return;
    }
    if (failure) {
      client.end(`event: error\ndata: ${JSON.stringify({ code: failure.status, data: null, msg: failure.message })}\n\n`);
      logRequest(request, failure.status, { error: failure.code });
      return;
    }
    client.end(`event: done\ndata: ${SUCCESS(answer)}\n\n`);
    logRequest(request, 200);
  }

  for (const url of ['/api/chat', '/ai/chat']) {
    app.post(url, { config: { errorFormat: 'envelope' }, bodyLimit: config.server.bodyLimit }, handler);
  }
}
