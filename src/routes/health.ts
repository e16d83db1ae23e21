import type { FastifyInstance } from 'fastify';

const OK = JSON.stringify({ status: 'ok' });

export function healthRoutes(app: FastifyInstance): void {
  app.get('/healthz', (_request, reply) => {
    reply.header('content-type', 'application/json; charset=utf-8').send(OK);
  });
}
