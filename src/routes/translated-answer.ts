import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '../errors/index.js';
import type { ActiveStreams } from '../http/active-streams.js';
import { SSE_HEADERS } from '../http/sse-response.js';
import { relayTranslated, type StreamTranslator, type TranslatedRelayOptions } from '../streaming/translated-relay.js';
import type { PoolResponse } from '../upstream/pool.js';
import { peekBody } from '../upstream/replay-body.js';

/** Non-streamed answers of a translated request are read this far. */
const ANSWER_LIMIT = 32 * 1024 * 1024;

/** The headers every translated answer carries: where it was served and the key's limits. */
export function answerHeaders(request: FastifyRequest, answer: PoolResponse): Record<string, string> {
  return { 'x-openai-api-upstream': answer.upstream, 'x-openai-api-attempts': String(answer.attempts), ...(request.ctx.ticket?.headers ?? {}) };
}

/** The upstream's non-streamed answer as a JSON object, to translate (`what` names it in the error). */
export async function readJsonAnswer(answer: PoolResponse, failure: (error: unknown) => GatewayError, what: string): Promise<Record<string, unknown>> {
  const peeked = await peekBody(answer.response.body, ANSWER_LIMIT).catch((error: unknown) => {
    throw failure(error);
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(peeked.text);
  } catch {
    parsed = undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new GatewayError('upstream_error', `Upstream "${answer.upstream}" answered with a body that is not ${what}.`);
  return parsed as Record<string, unknown>;
}

/**
 * Streams the upstream's events to the client in the client's protocol (`translator`), recording
 * what the relay came to on the request; returns the status to record (499 when the client left).
 */
export async function streamTranslatedAnswer(request: FastifyRequest, reply: FastifyReply, streams: ActiveStreams, answer: PoolResponse, translator: StreamTranslator, options: TranslatedRelayOptions): Promise<number> {
  const ctx = request.ctx;
  reply.hijack();
  const client = reply.raw;
  client.writeHead(200, { ...(reply.getHeaders() as Record<string, string | string[]>), ...answerHeaders(request, answer), ...SSE_HEADERS });
  client.flushHeaders();
  const body = answer.response.body;
  const unregister = streams.add((error) => body.destroy(error));
  const outcome = await relayTranslated(client, body, translator, options, () => ctx.clientLeft());
  unregister();
  ctx.relayed({ usage: outcome.usage, textSeen: outcome.textSeen, firstByteAt: outcome.firstByteAt, errorCode: outcome.error?.code });
  if (outcome.aborted) {
    ctx.aborted = true;
    return 499;
  }
  return 200;
}
