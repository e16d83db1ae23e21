import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

/** Headers that keep reverse proxies and load balancers from buffering or caching an event stream. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
};

/**
 * Takes the response over from Fastify for a stream we write ourselves (no extra stream layer
 * between upstream chunks and the socket). Headers already set on the reply (request id, CORS)
 * are kept.
 */
export function hijackForStream(reply: FastifyReply, status: number, headers: Record<string, string | string[] | number>): ServerResponse {
  const response = reply.raw;
  reply.hijack();
  const merged: Record<string, string | string[] | number> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) merged[name] = value as string | string[] | number;
  Object.assign(merged, headers);
  response.writeHead(status, merged);
  // Send headers now: a client waiting for the first token should see the stream has started.
  response.flushHeaders();
  return response;
}

/** Writes with backpressure: resolves at once when the socket takes the bytes, else on drain or close. */
export function writeChunk(response: ServerResponse, chunk: Buffer | string): Promise<void> | undefined {
  if (response.destroyed || response.writableEnded) return undefined;
  if (response.write(chunk)) return undefined;
  return new Promise((resolve) => {
    const done = (): void => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}
