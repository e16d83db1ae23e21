import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { GatewayError, sseErrorEvent, sseErrorFrame } from '../errors/index.js';
import { AnthropicUsageTap } from './anthropic-usage-tap.js';
import { usageFromJsonChunks } from './json-usage-tail.js';
import { SSE_KEEPALIVE, SseUsageTap } from './sse-usage-tap.js';
import type { Usage } from './usage.js';

export interface RelayOptions {
  /** Read usage from the body (known endpoints only). */
  meter: boolean;
  /** The gateway added include_usage; drop the usage-only event before it reaches the client. */
  dropUsageEvent: boolean;
  keepaliveMs: number;
  /** The stream must end with [DONE] or a Responses terminal event (known endpoints). */
  expectDone: boolean;
  /** Maps a failure while reading the upstream body to the client's error (timeouts, resets). */
  failure: (error: unknown) => GatewayError;
  /** Called with the id of the object an event stream creates (see SseTapOptions.onObjectId). */
  onObjectId?: (id: string) => void;
  /**
   * Upstream keys: blanked out of an event stream's error events (a provider's mid-stream error
   * may echo the key it was sent), even when split across chunks. Model output is not scanned;
   * see SseTapOptions.secrets for why.
   */
  secrets?: readonly string[];
  /**
   * The API the answer speaks, default `'openai'`. `'anthropic'`: usage from Anthropic's message
   * body or its `message_start`/`message_delta` events, `message_stop` as the end marker, and a
   * failure mid-stream ends it with Anthropic's `event: error`.
   */
  protocol?: 'openai' | 'anthropic';
}

/** What the relay needs of a side tap; SseUsageTap and AnthropicUsageTap both are one. */
type StreamTap = Pick<SseUsageTap, 'push' | 'end' | 'usage' | 'sawDone' | 'upstreamError' | 'atEventBoundary' | 'textSeen'>;

export interface RelayOutcome {
  usage: Usage | undefined;
  /** The client went away before the answer was complete. */
  aborted: boolean;
  /** The upstream failed after the answer began (the client got an SSE error event or a cut body). */
  error: GatewayError | undefined;
  /** performance.now() of the first body byte written to the client. */
  firstByteAt: number | undefined;
  /** For streams cut before their usage event: the text produced so far. */
  textSeen: (() => string) | undefined;
}

const TAIL_WINDOW = 64 * 1024;

/**
 * Copies an upstream answer to the client as it arrives. Event streams go through a side tap
 * that reads usage (and, when the gateway asked for usage the client did not, removes that one
 * event; with upstream keys to hide, blanks them in error events — both forward whole events);
 * other bodies are forwarded chunk by chunk while the last 64 KiB are kept for the usage scan.
 * Backpressure: the upstream is paused while the client's socket is full.
 */
export function relayBody(client: ServerResponse, body: Dispatcher.ResponseData['body'], isSse: boolean, options: RelayOptions, abortUpstream: () => void): Promise<RelayOutcome> {
  return new Promise((resolve) => {
    const anthropic = options.protocol === 'anthropic';
    const tap: StreamTap | undefined = !isSse
      ? undefined
      : anthropic
        ? new AnthropicUsageTap({ secrets: options.secrets })
        : new SseUsageTap({ dropUsageEvent: options.dropUsageEvent, stripNullUsage: true, onObjectId: options.onObjectId, secrets: options.secrets });
    const tail: Buffer[] = [];
    let tailSize = 0;
    let firstByteAt: number | undefined;
    let wroteSinceTick = false;
    let settled = false;
    let keepalive: NodeJS.Timeout | undefined;

    const write = (chunk: Buffer): void => {
      if (firstByteAt === undefined) firstByteAt = performance.now();
      wroteSinceTick = true;
      if (!client.write(chunk)) {
        body.pause();
        client.once('drain', onDrain);
      }
    };
    const onDrain = (): void => {
      body.resume();
    };
    const finish = (outcome: Omit<RelayOutcome, 'usage' | 'firstByteAt' | 'textSeen'>): void => {
      if (settled) return;
      settled = true;
      if (keepalive) clearInterval(keepalive);
      body.off('data', onData);
      client.off('close', onClientClose);
      client.off('drain', onDrain);
      let usage: Usage | undefined;
      if (tap) usage = options.meter ? tap.usage : undefined;
      else if (options.meter && !isSse) usage = usageFromJsonChunks(tail, tailSize, anthropic ? 'anthropic' : 'openai');
      resolve({ ...outcome, usage, firstByteAt, textSeen: tap && options.meter && !tap.usage ? () => tap.textSeen() : undefined });
    };
    const onData = (chunk: Buffer): void => {
      if (tap) {
        const out = tap.push(chunk);
        if (out !== undefined && out.length > 0) write(out);
        return;
      }
      if (options.meter && !isSse) {
        tail.push(chunk);
        tailSize += chunk.length;
        while (tail.length > 1 && tailSize - tail[0]!.length >= TAIL_WINDOW) tailSize -= tail.shift()!.length;
      }
      write(chunk);
    };
    const onEnd = (): void => {
      const rest = tap?.end();
      if (rest !== undefined && rest.length > 0) write(rest);
      if (tap && options.expectDone && !tap.sawDone && !tap.upstreamError) {
        // The upstream closed cleanly but before [DONE]: the answer is cut, and the client must know.
        onError(new GatewayError('upstream_error', 'The upstream ended the stream before it was complete.'));
        return;
      }
      client.end();
      finish({ aborted: false, error: undefined });
    };
    const onError = (error: unknown): void => {
      if (settled) return;
      if (client.destroyed) {
        finish({ aborted: true, error: undefined });
        return;
      }
      const failure = options.failure(error);
      if (isSse) {
        // A stream that already started cannot change its status: end it with an explicit error
        // event — after a blank line if the client holds half an event, or the two would merge.
        if (tap && !tap.atEventBoundary) client.write('\n\n');
        client.end(anthropic ? sseErrorFrame('anthropic', failure) : sseErrorEvent({ message: failure.message, type: failure.type, code: failure.code }));
      } else {
        // A JSON body cut midway must not look complete: reset the connection so the client sees the failure.
        client.destroy();
      }
      finish({ aborted: false, error: failure });
    };
    const onClientClose = (): void => {
      if (client.writableFinished) return;
      abortUpstream();
      body.destroy();
      finish({ aborted: true, error: undefined });
    };

    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    client.once('close', onClientClose);
    if (isSse && options.keepaliveMs > 0) {
      keepalive = setInterval(() => {
        // Only between events: a comment inside a half-forwarded event would corrupt it.
        if (!wroteSinceTick && tap!.atEventBoundary) client.write(SSE_KEEPALIVE);
        wroteSinceTick = false;
      }, options.keepaliveMs);
      keepalive.unref();
    }
  });
}
