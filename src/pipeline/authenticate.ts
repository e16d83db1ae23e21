import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator, Caller } from '../auth/authenticator.js';
import { GatewayError } from '../errors/index.js';

/**
 * Authenticates the request and applies the key's own CORS origins: a key limited to some
 * origins cannot be spent from another web page (its CORS header is withdrawn and the call refused).
 */
export async function authenticateRequest(request: FastifyRequest, reply: FastifyReply, auth: Authenticator): Promise<Caller> {
  const caller = await auth.authenticate(request.headers);
  request.ctx.authenticated(caller);
  const allowed = caller.key?.allowOrigin;
  const origin = request.headers.origin;
  if (allowed !== undefined && origin !== undefined && !allowed.has(origin)) {
    reply.removeHeader('access-control-allow-origin');
    throw new GatewayError('origin_not_allowed', `Key "${caller.name}" may not be used from origin ${origin}.`);
  }
  if (allowed !== undefined && origin !== undefined) {
    reply.header('access-control-allow-origin', origin);
    reply.header('vary', 'Origin');
  }
  return caller;
}
