// The floor for Node: a node:http server that relays every request to one upstream through an
// undici Pool, swapping only the Authorization header. No auth, limits, metering or logs.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const upstream = new URL(process.env.UPSTREAM_URL);
const authorization = `Bearer ${process.env.UPSTREAM_KEY}`;
const pool = new Pool(upstream.origin, { pipelining: 1, keepAliveTimeout: 30_000 });
// Connection-level headers (RFC 9110 §7.6.1) and the ones undici sets itself.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

function copyHeaders(from) {
  const to = {};
  for (const name in from) if (!HOP_BY_HOP.has(name)) to[name] = from[name];
  return to;
}

const server = createServer((request, response) => {
  const headers = copyHeaders(request.headers);
  headers.authorization = authorization;
  pool.stream(
    { path: request.url, method: request.method, headers, body: request.method === 'GET' || request.method === 'HEAD' ? null : request },
    ({ statusCode, headers: answer }) => {
      response.writeHead(statusCode, copyHeaders(answer));
      return response;
    },
    (error) => {
      if (!error) return;
      if (response.headersSent) response.destroy();
      else response.writeHead(502, { 'content-type': 'application/json' }).end('{"error":{"message":"upstream failed"}}');
    },
  );
});
server.keepAliveTimeout = 120_000;
server.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0), backlog: 4096 }, () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});
