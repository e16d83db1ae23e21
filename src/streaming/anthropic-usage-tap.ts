// Side tap for Anthropic's native Messages stream: forwards the bytes and reads, on the way, the
// token usage, the end marker and mid-stream errors.
// Events: https://docs.anthropic.com/en/docs/build-with-claude/streaming — `message_start`
// (`message.usage`: the prompt, cache reads and writes), `content_block_start|delta|stop`, `ping`,
// `message_delta` (`usage.output_tokens`, cumulative; may repeat the prompt counts),
// `message_stop` (the end), `error` (`{"type":"error","error":{"type","message"}}`). Each SSE
// `event:` name equals its data's `type`.
//
// The byte work — framing, whole-event forwarding, keys blanked in error events, error detection —
// is SseUsageTap's, reused as is: this tap only reads events by name. Hot path: only
// `message_start` and `message_delta` are parsed (one of each per stream); content deltas are
// recognised by their `event:` line and never parsed.

import type { SseEvent } from './sse-decoder.js';
import { SseDecoder } from './sse-decoder.js';
import { SseUsageTap, type UpstreamStreamError } from './sse-usage-tap.js';
import { usageFromAnthropicEvent, type Usage } from './usage.js';

export interface AnthropicTapOptions {
  /** Upstream keys to blank out of error events (see SseTapOptions.secrets). */
  secrets?: readonly string[];
  maxEventBytes?: number;
  /** Raw bytes kept for `textSeen()`; default 4 MiB. */
  retainTextBytes?: number;
}

const DEFAULT_RETAIN_TEXT_BYTES = 4 * 1024 * 1024;
/** The `type` at the head of an event's data, for a server that leaves out `event:` lines. */
const LEADING_TYPE = /^\s*\{\s*"type"\s*:\s*"([a-z_]+)"/;

export class AnthropicUsageTap {
  readonly #bytes: SseUsageTap;
  readonly #maxEventBytes: number | undefined;
  #usage: Usage | undefined;
  /** A `message_delta` (the final output count) or `message_stop` was seen: the usage is whole. */
  #complete = false;
  #sawStop = false;

  readonly #retainLimit: number;
  readonly #retained: Buffer[] = [];
  #retainedBytes = 0;

  constructor(opts: AnthropicTapOptions = {}) {
    this.#maxEventBytes = opts.maxEventBytes;
    // Text is retained here, in Anthropic's shape; the inner tap keeps none.
    this.#bytes = new SseUsageTap({ dropUsageEvent: false, secrets: opts.secrets, maxEventBytes: opts.maxEventBytes, retainTextBytes: 0, onEvent: (event) => this.#read(event) });
    this.#retainLimit = opts.retainTextBytes ?? DEFAULT_RETAIN_TEXT_BYTES;
  }

  /**
   * The prompt, cache and output counts once the stream said its final output count
   * (`message_delta`, or `message_stop` without one). Before that — a stream cut after
   * `message_start` — undefined, so the caller estimates the output from `textSeen()` rather
   * than bill the one token `message_start` announces.
   */
  get usage(): Usage | undefined {
    return this.#complete ? this.#usage : undefined;
  }

  /** `message_start`'s counts (prompt, cache) as soon as it came, output as far as known. */
  get usageSoFar(): Usage | undefined {
    return this.#usage;
  }

  /** `message_stop` was seen: the answer is complete. */
  get sawDone(): boolean {
    return this.#sawStop;
  }

  /** The first `error` event seen. */
  get upstreamError(): UpstreamStreamError | undefined {
    return this.#bytes.upstreamError;
  }

  get eventCount(): number {
    return this.#bytes.eventCount;
  }

  get atEventBoundary(): boolean {
    return this.#bytes.atEventBoundary;
  }

  push(chunk: Buffer): Buffer | undefined {
    this.#retain(chunk);
    return this.#bytes.push(chunk);
  }

  end(): Buffer | undefined {
    return this.#bytes.end();
  }

  /** The text generated so far (text, tool input JSON, thinking), parsed only now. */
  textSeen(): string {
    const decoder = new SseDecoder({ maxEventBytes: this.#maxEventBytes });
    const parts: string[] = [];
    for (const chunk of this.#retained) for (const event of decoder.push(chunk)) collectText(event, parts);
    for (const event of decoder.end()) collectText(event, parts);
    return parts.join('');
  }

  #read(event: SseEvent): void {
    const name = event.event ?? LEADING_TYPE.exec(event.data)?.[1];
    if (name === 'message_start' || name === 'message_delta') {
      const parsed = parseObject(event.data);
      this.#usage = usageFromAnthropicEvent(parsed, this.#usage);
      if (name === 'message_delta' && this.#usage !== undefined) this.#complete = true;
    } else if (name === 'message_stop') {
      this.#sawStop = true;
      this.#complete = true;
    }
  }

  #retain(chunk: Buffer): void {
    const room = this.#retainLimit - this.#retainedBytes;
    if (room <= 0 || chunk.length === 0) return;
    // A view, not a copy: the decoder keeps the same chunks.
    const kept = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.#retained.push(kept);
    this.#retainedBytes += kept.length;
  }
}

function parseObject(data: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(data);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Generated text of one `content_block_delta`: `text_delta`, `input_json_delta`, `thinking_delta`. */
function collectText(event: SseEvent, parts: string[]): void {
  if ((event.event ?? LEADING_TYPE.exec(event.data)?.[1]) !== 'content_block_delta') return;
  const delta = parseObject(event.data)?.delta;
  if (typeof delta !== 'object' || delta === null) return;
  const { text, partial_json: json, thinking } = delta as Record<string, unknown>;
  for (const value of [text, json, thinking]) if (typeof value === 'string' && value !== '') parts.push(value);
}
