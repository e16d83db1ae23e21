import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { GatewayError } from '../errors/index.js';
import { upstreamErrorMessage } from '../upstream/error-body.js';
import type { SocketTarget } from '../upstream/pool.js';

/** Answers to a handshake that say the path has no WebSocket at all. */
const NO_SOCKET = new Set([404, 405, 426, 501]);

/** The upstream's error bodies are read this far. */
const ERROR_BODY_LIMIT = 64 * 1024;

export interface UpstreamSocketOptions {
  /** Caller headers that mean something upstream (OpenAI-Beta). */
  headers: Record<string, string>;
  /** Subprotocols to offer (Realtime's, never a key). */
  protocols: string[];
  /** The handshake must complete within this. */
  timeoutMs: number;
  /** Upstream keys, blanked out of error messages. */
  secrets: readonly string[];
  /** Aborts the attempt when the client left. */
  signal: AbortSignal;
}

/** A failed attempt: whether another upstream key or upstream may succeed where this one failed. */
class AttemptFailed extends Error {
  constructor(
    readonly error: GatewayError,
    readonly retryable: boolean,
  ) {
    super(error.message);
  }
}

/**
 * Opens the upstream WebSocket on the first target that takes it. A refusal that another key or
 * upstream could change (429, 5xx, no connection, a timeout) moves on to the next target; the
 * upstream's answer to the request itself (400, 404: a bad model, a bad query) ends the attempts
 * and is passed on with its status. 401 and 403 say the server's key is wrong, not the
 * caller's: they become 502. An upstream that answers the handshake as a plain request (200,
 * 404, 405, 501) has no WebSocket there: 426, so the client falls back to HTTP.
 */
export async function openUpstreamSocket(targets: readonly SocketTarget[], options: UpstreamSocketOptions): Promise<{ socket: WebSocket; target: SocketTarget }> {
  let last: GatewayError | undefined;
  for (const target of targets) {
    try {
      return { socket: await attempt(target, options), target };
    } catch (error) {
      if (!(error instanceof AttemptFailed)) throw error;
      last = error.error;
      if (!error.retryable || options.signal.aborted) break;
    }
  }
  throw last ?? new GatewayError('upstream_unreachable', 'No upstream WebSocket could be opened.');
}

function attempt(target: SocketTarget, options: UpstreamSocketOptions): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(target.url, options.protocols, {
      headers: { ...options.headers, ...target.headers },
      perMessageDeflate: false,
      handshakeTimeout: options.timeoutMs,
      followRedirects: false,
      // Upstream events are relayed as they come; a response's whole output can be one event.
      maxPayload: 256 * 1024 * 1024,
    });
    const onAbort = (): void => socket.terminate();
    options.signal.addEventListener('abort', onAbort, { once: true });
    const done = (): void => options.signal.removeEventListener('abort', onAbort);
    socket.once('open', () => {
      done();
      // Paused until the relay listens: Realtime's `session.created` comes right after the handshake.
      socket.pause();
      resolve(socket);
    });
    socket.once('unexpected-response', (_request, response: IncomingMessage) => {
      done();
      void refusal(target, response, options.secrets).then((failure) => {
        socket.terminate();
        reject(failure);
      });
    });
    socket.once('error', (error: Error) => {
      done();
      const timedOut = /timed out|timeout/i.test(error.message);
      reject(
        new AttemptFailed(
          new GatewayError(timedOut ? 'upstream_timeout' : 'upstream_unreachable', `Upstream "${target.upstream}" WebSocket could not be opened: ${timedOut ? 'the handshake timed out' : error.message.replace(/\s+/g, ' ').slice(0, 200)}.`),
          true,
        ),
      );
    });
  });
}

async function refusal(target: SocketTarget, response: IncomingMessage, secrets: readonly string[]): Promise<AttemptFailed> {
  const status = response.statusCode ?? 502;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= ERROR_BODY_LIMIT) break;
    }
  } catch {
    // The body is only for the message.
  }
  const message = upstreamErrorMessage(status, Buffer.concat(chunks).toString('utf8', 0, Math.min(size, ERROR_BODY_LIMIT)), secrets);
  const text = `Upstream "${target.upstream}" refused the WebSocket (${status}): ${message}`;
  if (NO_SOCKET.has(status) || status < 400) {
    // It answered the handshake as a plain request: no WebSocket there (a provider without them,
    // a proxy in front). 426 makes clients fall back to HTTP at once.
    return new AttemptFailed(new GatewayError('upgrade_required', `Upstream "${target.upstream}" has no WebSocket here (it answered the handshake with ${status}); use HTTP, or set "websockets": false on that upstream.`, { headers: { connection: 'close' } }), true);
  }
  if (status === 429 || status >= 500) return new AttemptFailed(new GatewayError('upstream_error', text), true);
  if (status === 401 || status === 403) return new AttemptFailed(new GatewayError('upstream_error', text), false);
  return new AttemptFailed(new GatewayError('upstream_error', text, { status: status >= 400 && status < 500 ? status : 502 }), false);
}
