import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, openAiErrorBody, upstreamStatusCode } from '../errors/index.js';
import type { ActiveStreams } from '../http/active-streams.js';
import { sendUpstream } from '../pipeline/pipeline.js';
import type { RuntimeParts } from '../runtime.js';
import { SseDecoder } from '../streaming/sse-decoder.js';
import { usageFromAnthropic, usageFromAnthropicEvent } from '../streaming/usage.js';
import { chatToMessagesRequest } from '../translate/chat-to-messages.js';
import { messageToChatCompletion } from '../translate/messages-to-chat-response.js';
import { MessagesToChatStream } from '../translate/messages-stream-to-chat.js';
import { upstreamErrorMessage } from '../upstream/error-body.js';
import { upstreamFailure } from '../upstream/failure.js';
import { answerHeaders, readJsonAnswer, streamTranslatedAnswer } from './translated-answer.js';

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value);

/** A chat completions request whose model only an Anthropic upstream serves. */
export interface ChatViaMessages {
  readonly model: string;
  /** The chat body as the gateway prepared it (persona, defaults, ceiling applied). */
  readonly chat: Json;
  readonly stream: boolean;
  /** The caller asked for the usage chunk (`stream_options.include_usage`) itself. */
  readonly includeUsage: boolean;
}

/**
 * An Anthropic event stream as OpenAI chat chunks (with the usage chunk and `[DONE]` at its end),
 * for a route that reads chat streams itself (`/api/chat`). A stream cut before `message_stop`
 * gets no `[DONE]`, so the reader sees it cut.
 */
export async function* anthropicAsChatChunks(body: AsyncIterable<Uint8Array>, model: string): AsyncGenerator<Buffer> {
  const decoder = new SseDecoder();
  const translator = new MessagesToChatStream(model, true);
  let ended = false;
  const translate = (data: string): string => {
    let event: unknown;
    try {
      event = JSON.parse(data);
    } catch {
      return '';
    }
    if (!isObject(event)) return '';
    if (event.type === 'message_stop') ended = true;
    return translator.push(event);
  };
  for await (const chunk of body) {
    for (const event of decoder.push(chunk)) {
      const out = translate(event.data);
      if (out !== '') yield Buffer.from(out);
    }
  }
  for (const event of decoder.end()) {
    const out = translate(event.data);
    if (out !== '') yield Buffer.from(out);
  }
  if (ended) yield Buffer.from(translator.finish());
}

/**
 * `POST /v1/chat/completions` served by an Anthropic upstream: the chat request translated to a
 * Messages request (src/translate/), the answer back to a chat completion or chunk stream, event
 * by event. Errors keep their status (529 overloaded becomes 503, which OpenAI clients know).
 */
export async function chatViaMessages(request: FastifyRequest, reply: FastifyReply, parts: RuntimeParts, streams: ActiveStreams, call: ChatViaMessages): Promise<number> {
  const ctx = request.ctx;
  const { model, stream } = call;
  const body = chatToMessagesRequest(call.chat, { model, stream });
  const answer = await sendUpstream(request, parts, { model, method: 'POST', path: '/messages', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), protocol: 'anthropic' });
  const { response } = answer;
  const status = response.statusCode;
  const failure = (error: unknown): GatewayError => upstreamFailure(error, answer.upstream, parts.config.upstream);
  const headers = answerHeaders(request, answer);
  const contentType = String(response.headers['content-type'] ?? '');
  if (status >= 400) {
    const text = await response.body.text().catch(() => '');
    const shown = status === 529 ? 503 : status;
    const error = new GatewayError('upstream_error', `Upstream "${answer.upstream}" answered ${status}: ${upstreamErrorMessage(status, text, parts.upstreams.secrets())}`, { status: shown });
    ctx.relayed({ usage: undefined, textSeen: undefined, firstByteAt: undefined, errorCode: upstreamStatusCode(status) });
    reply.code(shown).headers(headers).header('content-type', 'application/json').send(openAiErrorBody(error));
    return shown;
  }
  if (!contentType.startsWith('text/event-stream')) {
    const message = await readJsonAnswer(answer, failure, 'a message');
    ctx.relayed({ usage: usageFromAnthropic(message.usage), textSeen: undefined, firstByteAt: undefined, errorCode: undefined });
    reply.code(200).headers(headers).header('content-type', 'application/json').send(JSON.stringify(messageToChatCompletion(message, model)));
    return 200;
  }
  return streamTranslatedAnswer(request, reply, streams, answer, new MessagesToChatStream(model, call.includeUsage), {
    usageOf: usageFromAnthropicEvent,
    isEnd: (event) => event.type === 'message_stop',
    failure,
    errorType: (error) => error.type,
  });
}
