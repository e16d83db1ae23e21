import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Caller } from '../auth/authenticator.js';
import type { Conversations } from '../conversations/conversations.js';
import { conversationIdProblem, OWNER_SCOPE, type ConversationSummary, type ConversationTurn } from '../domain/conversation.js';
import { GatewayError } from '../errors/index.js';
import { authenticateRequest } from '../pipeline/authenticate.js';
import type { Runtime } from '../runtime.js';

export interface ConversationRoutesDeps {
  runtime: Runtime;
  conversations: Conversations;
}

/** A conversation as the API shows it: its turns as messages, with their times. */
export interface ConversationView {
  conversation_id: string;
  created_at: string;
  last_at: string;
  expires_at: string;
  turns: Array<{ seq: number; prompt: string; answer: string; asked_at: string; answered_at: string }>;
}

export function conversationView(summary: ConversationSummary, turns: readonly ConversationTurn[]): ConversationView {
  return {
    conversation_id: summary.id,
    created_at: summary.createdAt.toISOString(),
    last_at: summary.lastAt.toISOString(),
    expires_at: summary.expiresAt.toISOString(),
    turns: turns.map((turn) => ({ seq: turn.seq, prompt: turn.prompt, answer: turn.answer, asked_at: turn.askedAt.toISOString(), answered_at: turn.answeredAt.toISOString() })),
  };
}

/** A conversation id from a path; the message says what is wrong with it. */
export function pathConversationId(raw: string | undefined): string {
  const problem = conversationIdProblem(raw ?? '');
  if (problem !== undefined) throw new GatewayError('invalid_request', `Conversation id ${problem} (it is the conversation_id sent to /api/chat, URL-encoded in the path).`, { param: 'conversation_id' });
  return raw!;
}

/** Whose conversations a caller reaches: its app key's, or the owner's shared ones (access tokens, the open mode). */
function ownerOf(caller: Caller): string {
  return caller.key?.id ?? OWNER_SCOPE;
}

const notFound = (id: string): GatewayError => new GatewayError('conversation_not_found', `No conversation ${JSON.stringify(id)} for this key (it expired, was deleted, or never was).`);

/**
 * `GET` and `DELETE /api/chat/conversations/{id}` (and under /ai/chat): the caller's own
 * conversation, read or forgotten, in the seed's envelope. Any other key's conversation of the
 * same id is simply not there: the owner is the caller's key, never a value from the request.
 * A wildcard rather than a `:id` parameter, which Fastify caps at 100 characters.
 */
export function conversationRoutes(app: FastifyInstance, deps: ConversationRoutesDeps): void {
  const { runtime, conversations } = deps;

  async function target(request: FastifyRequest, reply: FastifyReply): Promise<{ keyId: string; conversationId: string }> {
    const caller = await authenticateRequest(request, reply, runtime.current.auth);
    const conversationId = pathConversationId((request.params as { '*'?: string })['*']);
    return { keyId: ownerOf(caller), conversationId };
  }

  for (const base of ['/api/chat/conversations/', '/ai/chat/conversations/']) {
    app.get(`${base}*`, { config: { errorFormat: 'envelope' } }, async (request, reply) => {
      const ref = await target(request, reply);
      const found = await conversations.get(ref);
      if (found === undefined) throw notFound(ref.conversationId);
      return reply.header('cache-control', 'no-store').send({ code: 200, data: conversationView(found.summary, found.turns), msg: 'success' });
    });

    app.delete(`${base}*`, { config: { errorFormat: 'envelope' } }, async (request, reply) => {
      const ref = await target(request, reply);
      if (!(await conversations.forget(ref))) throw notFound(ref.conversationId);
      return reply.send({ code: 200, data: { conversation_id: ref.conversationId, deleted: true }, msg: 'success' });
    });
  }
}
