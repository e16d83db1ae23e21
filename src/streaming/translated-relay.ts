import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { GatewayError } from '../errors/index.js';
import { SseDecoder } from './sse-decoder.js';
import type { RelayOutcome } from './relay-response.js';
import type { Usage } from './usage.js';

/** Turns one protocol's stream events into another's, event by event (src/translate/). */
export interface StreamTranslator {
  /** One upstream event's data, parsed; returns what to write to the client now (maybe ''). */
  push(event: Record<string, unknown>): string;
  /** The upstream ended its stream properly: the closing events. */
  finish(): string;
  /** The upstream failed mid-stream: the error event that ends the client's stream. */
  fail(error: { type: string; message: string }): string;
}

export interface TranslatedRelayOptions {
  /** Reads usage from one upstream event (the last one seen wins; `merge` combines partial ones). */
  usageOf(event: Record<string, unknown>, previous: Usage | undefined): Usage | undefined;
  /** Whether this event ends the upstream stream (`[DONE]` is handled by the relay). */
  isEnd(event: Record<string, unknown>): boolean;
  /** Maps a failure while reading the upstream body to the client's error. */
  failure(error: unknown): GatewayError;
  /** The error `type` the client's protocol uses for a gateway error. */
  errorType(error: GatewayError): string;
}

/**
 * Relays an upstream event stream in another protocol: each event is parsed (the translation
 * needs it), translated and written as soon as it arrives — nothing is held back but a partial
 * event. Backpressure: the upstream is paused while the client's socket is full. A client that
 * leaves aborts the upstream; an upstream that fails or ends without its end event gets the
 * client's protocol's error event.
 */
export function relayTranslated(client: ServerResponse, body: Dispatcher.ResponseData['body'], translator: StreamTranslator, options: TranslatedRelayOptions, abortUpstream: () => void): Promise<RelayOutcome> {
  return new Promise((resolve) => {
    const decoder = new SseDecoder();
    let usage: Usage | undefined;
    let firstByteAt: number | undefined;
    let ended = false;
    let settled = false;

    const write = (out: string): void => {
      if (out === '' || client.writableEnded) return;
      firstByteAt ??= performance.now();
      if (!client.write(out)) {
        body.pause();
        client.once('drain', () => body.resume());
      }
    };
    const settle = (outcome: Omit<RelayOutcome, 'usage' | 'firstByteAt' | 'textSeen'>): void => {
      if (settled) return;
      settled = true;
      client.off('close', onClientClose);
      // No text estimate: a cut stream is charged its prompt and max_tokens (pipeline/finish.ts).
      resolve({ ...outcome, usage, firstByteAt, textSeen: undefined });
    };
    const onEvent = (data: string): void => {
      if (ended) return;
      if (data === '[DONE]') {
        ended = true;
        return;
      }
      let event: unknown;
      try {
        event = JSON.parse(data);
      } catch {
        return;
      }
      if (event === null || typeof event !== 'object' || Array.isArray(event)) return;
      const parsed = event as Record<string, unknown>;
      usage = options.usageOf(parsed, usage) ?? usage;
      if (options.isEnd(parsed)) ended = true;
      write(translator.push(parsed));
    };
    const onClientClose = (): void => {
      if (client.writableFinished) return;
      abortUpstream();
      body.destroy();
      settle({ aborted: true, error: undefined });
    };
    client.once('close', onClientClose);
    body.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) onEvent(event.data);
    });
    body.once('end', () => {
      for (const event of decoder.end()) onEvent(event.data);
      if (settled) return;
      if (ended || usage !== undefined) {
        client.end(translator.finish());
        settle({ aborted: false, error: undefined });
        return;
      }
      const error = options.failure(new Error('the upstream stream ended before its last event'));
      client.end(translator.fail({ type: options.errorType(error), message: error.message }));
      settle({ aborted: false, error });
    });
    body.once('error', (cause: unknown) => {
      if (settled) return;
      const error = options.failure(cause);
      if (!client.writableEnded) client.end(translator.fail({ type: options.errorType(error), message: error.message }));
      settle({ aborted: false, error });
    });
  });
}
