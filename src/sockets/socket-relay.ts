import type { RawData, WebSocket } from 'ws';

/** What to send upstream for one client message: the same bytes, a rewritten event, or nothing (the gateway answered it). */
export type Outgoing = Buffer | string | undefined;

/**
 * A protocol's side of a relay (Responses WebSocket mode, Realtime): it sees every client
 * message before it goes upstream (admission, model checks) and every upstream message as it
 * passes (usage, object ids). The relay moves the bytes, keeps time and closes.
 */
export interface RelayPolicy {
  /** Decides one client message; messages are decided one at a time, in order, even when a decision waits. */
  fromClient(message: Buffer): Outgoing | Promise<Outgoing>;
  /** Sees one upstream message; it is relayed unchanged right after. */
  fromUpstream(message: Buffer): void;
  /** Both sides are closed (or closing): settle what is still open. Called once. */
  ended(ending: RelayEnding): void;
}

export interface RelayEnding {
  /** Who closed first: the client, the upstream, or the gateway (a limit, shutdown, a refusal). */
  by: 'client' | 'upstream' | 'gateway';
  code: number;
  reason: string;
}

export interface RelayTimes {
  /** No message either way for this long closes the relay. */
  idleTimeoutMs: number;
  /** The relay is closed this long after it opened, busy or not. */
  maxDurationMs: number;
}

/** Pings both peers at most this often; a peer that has not answered the previous ping is gone. */
const PING_INTERVAL_MS = 30_000;
/** Upstream messages waiting in the client's socket buffer before the upstream is paused. */
const HIGH_WATER = 1024 * 1024;
/** Client messages waiting for a decision before the client is paused. */
const MAX_QUEUED = 64;

/** Codes an endpoint may send in a close frame (RFC 6455 §7.4.1; 1005, 1006 and 1015 only describe a close). */
export function sendableCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** A close reason must fit a control frame: 123 bytes of UTF-8 at most. */
function shortReason(reason: string): string {
  let out = reason;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

const asBuffer = (data: RawData): Buffer => (Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));

/**
 * One client WebSocket joined to one upstream WebSocket. Messages go through as they come, each
 * as one message (`ws` reassembles fragments; nothing is buffered beyond one message): client
 * messages after the policy decided them, in order; upstream messages after the policy saw them.
 * A client that reads slowly pauses the upstream (and a client whose messages wait for decisions
 * is paused), so memory stays bounded. Close codes pass through both ways; either side closing
 * closes the other. Idle and total-duration limits close both; pings find dead peers.
 */
export class SocketRelay {
  #ended = false;
  #queue: Promise<void> = Promise.resolve();
  #queued = 0;
  #lastActivity = Date.now();
  #clientAnswered = true;
  #upstreamAnswered = true;
  readonly #ticker: NodeJS.Timeout;
  readonly #deadline: NodeJS.Timeout;

  constructor(
    readonly client: WebSocket,
    readonly upstream: WebSocket,
    private readonly policy: RelayPolicy,
    private readonly times: RelayTimes,
    private readonly onError: (error: unknown) => void,
  ) {
    client.on('message', (data, isBinary) => this.#fromClient(asBuffer(data), isBinary));
    upstream.on('message', (data, isBinary) => this.#fromUpstream(asBuffer(data), isBinary));
    client.on('pong', () => (this.#clientAnswered = true));
    upstream.on('pong', () => (this.#upstreamAnswered = true));
    client.on('close', (code, reason) => this.#closed('client', code, reason.toString()));
    upstream.on('close', (code, reason) => this.#closed('upstream', code, reason.toString()));
    // A protocol error (a frame over the size limit, bad UTF-8) closes that socket with the right
    // code; the 'close' that follows ends the relay.
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    const tick = Math.max(50, Math.min(PING_INTERVAL_MS, Math.floor(times.idleTimeoutMs / 2)));
    this.#ticker = setInterval(() => this.#tick(), tick);
    this.#deadline = setTimeout(() => this.end(1008, 'the connection reached its maximum duration'), times.maxDurationMs);
    this.#ticker.unref();
    this.#deadline.unref();
    upstream.resume();
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Sends the client one event of the gateway's own (a refusal), in order with relayed messages. */
  sendToClient(event: string): void {
    if (this.client.readyState === this.client.OPEN) this.client.send(event);
  }

  /** Sends the upstream one event of the gateway's own (a cancel). */
  sendToUpstream(event: string): void {
    if (this.upstream.readyState === this.upstream.OPEN) this.upstream.send(event);
  }

  /** Closes both sides with this code (the gateway's decision: a limit, a budget, shutdown). */
  end(code: number, reason: string): void {
    if (this.#ended) return;
    this.#finish({ by: 'gateway', code, reason });
    const text = shortReason(reason);
    for (const socket of [this.client, this.upstream]) {
      if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, text);
    }
    // A peer that never answers the close frame is cut after a grace period.
    setTimeout(() => {
      this.client.terminate();
      this.upstream.terminate();
    }, 2000).unref();
  }

  #fromClient(message: Buffer, isBinary: boolean): void {
    if (this.#ended) return;
    this.#lastActivity = Date.now();
    this.#queued += 1;
    if (this.#queued >= MAX_QUEUED) this.client.pause();
    this.#queue = this.#queue.then(async () => {
      try {
        const outgoing = isBinary ? undefined : await this.policy.fromClient(message);
        if (outgoing !== undefined && !this.#ended && this.upstream.readyState === this.upstream.OPEN) this.upstream.send(outgoing, { binary: false });
      } catch (error) {
        this.onError(error);
        this.end(1011, 'the gateway failed to relay a message');
      } finally {
        this.#queued -= 1;
        if (this.#queued < MAX_QUEUED / 2 && this.client.isPaused && !this.#ended) this.client.resume();
      }
    });
    if (isBinary) this.sendToClient(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', code: 'invalid_request', message: 'Binary messages are not part of this protocol; send JSON events as text.', param: null } }));
  }

  #fromUpstream(message: Buffer, isBinary: boolean): void {
    if (this.#ended) return;
    this.#lastActivity = Date.now();
    if (!isBinary) {
      try {
        this.policy.fromUpstream(message);
      } catch (error) {
        this.onError(error);
      }
    }
    if (this.client.readyState !== this.client.OPEN) return;
    this.client.send(message, { binary: isBinary }, () => {
      if (this.upstream.isPaused && this.client.bufferedAmount < HIGH_WATER / 2) this.upstream.resume();
    });
    if (this.client.bufferedAmount > HIGH_WATER) this.upstream.pause();
  }

  #closed(by: 'client' | 'upstream', code: number, reason: string): void {
    if (this.#ended) return;
    this.#finish({ by, code, reason });
    const other = by === 'client' ? this.upstream : this.client;
    // An abnormal end (1006: no close frame) becomes "going away" towards the upstream and an internal error towards the client.
    const passed = sendableCode(code) ? code : by === 'client' ? 1001 : 1011;
    if (other.readyState === other.OPEN || other.readyState === other.CONNECTING) other.close(passed, shortReason(reason));
    setTimeout(() => other.terminate(), 2000).unref();
  }

  #finish(ending: RelayEnding): void {
    this.#ended = true;
    clearInterval(this.#ticker);
    clearTimeout(this.#deadline);
    try {
      this.policy.ended(ending);
    } catch (error) {
      this.onError(error);
    }
  }

  #tick(): void {
    if (this.#ended) return;
    if (Date.now() - this.#lastActivity >= this.times.idleTimeoutMs) {
      this.end(1000, 'idle timeout: no message either way');
      return;
    }
    if (!this.#clientAnswered) {
      this.client.terminate();
      return;
    }
    if (!this.#upstreamAnswered) {
      this.upstream.terminate();
      return;
    }
    this.#clientAnswered = false;
    this.#upstreamAnswered = false;
    this.client.ping();
    this.upstream.ping();
  }
}
