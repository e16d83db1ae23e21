// Side tap between an upstream SSE stream and the client: forwards the bytes and reads, on the
// way, the token usage, the end-of-stream marker and mid-stream errors.
// Framing: https://html.spec.whatwg.org/multipage/server-sent-events.html (see sse-decoder.ts);
// events: OpenAI chat/completions chunks (`data: [DONE]` terminated, usage chunk with empty
// `choices` when `stream_options.include_usage`) and Responses API events (terminal
// `response.completed|incomplete|failed`), https://github.com/openai/openai-openapi.
//
// Hot path rules: an event is JSON-parsed only when a substring check says it may carry usage,
// an error or a Responses terminal type; forwarded bytes are never re-serialised, only cut
// (the usage-only event) or blanked (upstream keys in error events).

import { performance } from 'node:perf_hooks';
import { SseDecoder } from './sse-decoder.js';
import type { DecodedSseEvent, SseEvent } from './sse-decoder.js';
import { usageFromObject } from './usage.js';
import type { Usage } from './usage.js';

export interface SseTapOptions {
  /**
   * The gateway added `stream_options.include_usage` the client did not ask for: hold bytes until
   * each event is complete and drop the usage-only chunk (its usage is still recorded).
   */
  dropUsageEvent: boolean;
  /** With dropUsageEvent: also cut `,"usage":null` from forwarded chunks (absent without include_usage). */
  stripNullUsage?: boolean;
  maxEventBytes?: number;
  /** Raw bytes kept for `textSeen()`; default 4 MiB. Only the start of a longer stream is kept. */
  retainTextBytes?: number;
  /**
   * Called once with the id of the object the stream creates — a chat chunk's `id`, a Responses
   * stream's `response.id` — read from the first event that has one (one JSON.parse per stream).
   */
  onObjectId?: (id: string) => void;
  /**
   * Called with every event, before the tap reads it: for a route that renders the events itself
   * (the seed's envelope stream) and leaves [DONE], usage and error detection to the tap.
   */
  onEvent?: (event: SseEvent) => void;
  /**
   * Upstream keys to blank out of error events (a provider's error text may echo the key it was
   * sent). With any set, the tap forwards whole events only, as in drop mode, so that a key split
   * across chunks is still caught. Strings under 8 characters are ignored: they would blank
   * innocent text.
   *
   * Only events that may be errors are scanned, not every chunk for every key. The trade-off:
   * other events are model output, and the model never sees the key (it travels in a header), so
   * output can only echo one that a caller put in the prompt or a tool fetched — that is relayed
   * as generated. Not caught either: a provider that reports an error as ordinary content, and
   * an event over maxEventBytes (forwarded uninspected).
   */
  secrets?: readonly string[];
}

export interface UpstreamStreamError {
  message: string;
  code: string | null;
  type: string | null;
}

type JsonObject = Record<string, unknown>;

const DEFAULT_RETAIN_TEXT_BYTES = 4 * 1024 * 1024;
const KEEP_SCRATCH_BYTES = 64 * 1024;
const MAX_MESSAGE_CHARS = 1000;
const EMPTY = Buffer.alloc(0);
const TERMINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);
/**
 * Whether an event may carry usage (`"usage":{`), an error (`"error":{`, `"error":"…"`,
 * `"type":"error"`) or a Responses terminal type. Content strings cannot fake a match: inside a
 * JSON string every `"` is escaped. A false positive only costs one JSON.parse.
 */
const MAY_MATTER = /"(?:usage|error)"\s*:\s*[{"]|"type"\s*:\s*"error"|"response\.(?:completed|incomplete|failed)"/;
/**
 * An event whose text may come from an upstream error, anywhere in it (the nested
 * `response.error` of `response.failed` included): its bytes are scanned for secrets. Tested
 * only after MAY_MATTER matched, so ordinary deltas never pay for it.
 */
const ERROR_TEXT = /"error"\s*:\s*[{"]|"type"\s*:\s*"error"/;
const MIN_SECRET_CHARS = 8;
const REDACTED = Buffer.from('[redacted]');
/** What the tap does with an event's bytes in whole-event mode. */
const Verdict = { Forward: 0, Drop: 1, Redact: 2 } as const;
type Verdict = (typeof Verdict)[keyof typeof Verdict];
const TEXT_DELTA_EVENTS = new Set([
  'response.output_text.delta',
  'response.refusal.delta',
  'response.function_call_arguments.delta',
  'response.reasoning_text.delta',
  'response.reasoning_summary_text.delta',
]);

/** Comment line clients ignore; safe to send whenever the tap is at an event boundary. */
export const SSE_KEEPALIVE: Buffer = Buffer.from(': keep-alive\n\n');

/** Rendered by errors/ with every other error; re-exported for the relays that still import it from here. */
export { sseErrorEvent } from '../errors/render.js';

const NULL_USAGE = Buffer.from(',"usage":null');

/**
 * With include_usage on, OpenAI adds `"usage":null` to every chunk; without it the key is absent.
 * When the gateway asked for usage on the client's behalf, the client must see the chunks it
 * would have got, so the member is cut out. Drop mode forwards whole events only, so the
 * pattern is never split across outputs; inside JSON strings a quote is escaped and cannot match.
 */
function withoutNullUsage(out: Buffer | undefined): Buffer | undefined {
  return out === undefined ? undefined : replaceAll(out, NULL_USAGE, EMPTY);
}

/** `bytes` with every `needle` replaced; the same buffer when there is none. */
function replaceAll(bytes: Buffer, needle: Buffer, replacement: Buffer): Buffer {
  let at = bytes.indexOf(needle);
  if (at === -1) return bytes;
  const pieces: Buffer[] = [];
  let from = 0;
  while (at !== -1) {
    pieces.push(bytes.subarray(from, at), replacement);
    from = at + needle.length;
    at = bytes.indexOf(needle, from);
  }
  pieces.push(bytes.subarray(from));
  return Buffer.concat(pieces);
}

export class SseUsageTap {
  readonly #drop: boolean;
  readonly #secrets: readonly Buffer[];
  /** Forward whole events only (drop mode, or secrets to blank). */
  readonly #whole: boolean;
  readonly #stripNullUsage: boolean;
  readonly #maxEventBytes: number | undefined;
  readonly #decoder: SseDecoder;
  #onObjectId: ((id: string) => void) | undefined;
  readonly #onEvent: ((event: SseEvent) => void) | undefined;

  #usage: Usage | undefined;
  #sawDone = false;
  #error: UpstreamStreamError | undefined;
  #eventCount = 0;
  #firstEventAt: number | undefined;

  readonly #retainLimit: number;
  readonly #retained: Buffer[] = [];
  #retainedBytes = 0;

  // Whole-event mode only. Bytes received but not forwarded yet are copied into `#held` (they
  // always end the received stream), and `#edits` lists [start, end, verdict] triples: events
  // to leave out or to forward with secrets blanked.
  #received = 0;
  #held: Buffer | undefined;
  #heldLen = 0;
  readonly #edits: number[] = [];

  constructor(opts: SseTapOptions) {
    this.#drop = opts.dropUsageEvent;
    this.#secrets = (opts.secrets ?? []).filter((secret) => secret.length >= MIN_SECRET_CHARS).map((secret) => Buffer.from(secret));
    this.#whole = this.#drop || this.#secrets.length > 0;
    this.#stripNullUsage = opts.dropUsageEvent && opts.stripNullUsage === true;
    this.#maxEventBytes = opts.maxEventBytes;
    this.#decoder = new SseDecoder({ maxEventBytes: opts.maxEventBytes });
    this.#retainLimit = opts.retainTextBytes ?? DEFAULT_RETAIN_TEXT_BYTES;
    this.#onObjectId = opts.onObjectId;
    this.#onEvent = opts.onEvent;
  }

  get usage(): Usage | undefined {
    return this.#usage;
  }

  get sawDone(): boolean {
    return this.#sawDone;
  }

  /** The first error event seen (later ones usually just repeat or wrap it). */
  get upstreamError(): UpstreamStreamError | undefined {
    return this.#error;
  }

  /** Events with data seen so far, `[DONE]` and dropped usage chunks included. */
  get eventCount(): number {
    return this.#eventCount;
  }

  get firstEventAt(): number | undefined {
    return this.#firstEventAt;
  }

  /** True when the bytes forwarded so far end between events, so SSE_KEEPALIVE may follow. */
  get atEventBoundary(): boolean {
    if (!this.#whole) return this.#decoder.atEventBoundary;
    return this.#received - this.#heldLen === this.#decoder.boundaryOffset;
  }

  push(chunk: Buffer): Buffer | undefined {
    this.#retain(chunk);
    const events = this.#decoder.push(chunk);
    if (!this.#whole) {
      for (const event of events) this.#inspect(event);
      return chunk;
    }
    this.#collectEdits(events);
    const out = this.#release(chunk, this.#decoder.settledOffset);
    return this.#stripNullUsage ? withoutNullUsage(out) : out;
  }

  end(): Buffer | undefined {
    const events = this.#decoder.end();
    if (!this.#whole) {
      for (const event of events) this.#inspect(event);
      return undefined;
    }
    this.#collectEdits(events);
    const out = this.#release(EMPTY, this.#received);
    return this.#stripNullUsage ? withoutNullUsage(out) : out;
  }

  /**
   * The text generated so far, for estimating completion tokens when the usage never came.
   * Decodes and parses the retained bytes only now, so it costs nothing per chunk.
   */
  textSeen(): string {
    const decoder = new SseDecoder({ maxEventBytes: this.#maxEventBytes });
    const parts: string[] = [];
    for (const chunk of this.#retained) for (const event of decoder.push(chunk)) collectText(event, parts);
    for (const event of decoder.end()) collectText(event, parts);
    return parts.join('');
  }

  #retain(chunk: Buffer): void {
    const room = this.#retainLimit - this.#retainedBytes;
    if (room <= 0 || chunk.length === 0) return;
    const kept = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.#retained.push(kept);
    this.#retainedBytes += kept.length;
  }

  #collectEdits(events: DecodedSseEvent[]): void {
    for (const event of events) {
      const verdict = this.#inspect(event);
      if (verdict !== Verdict.Forward) this.#edits.push(event.start, event.end, verdict);
    }
  }

  /** Records what the event says; returns what whole-event mode does with its bytes. */
  #inspect(event: SseEvent): Verdict {
    this.#onEvent?.(event);
    this.#eventCount++;
    this.#firstEventAt ??= performance.now();
    const { data, event: name } = event;
    if (data === '[DONE]') {
      this.#sawDone = true;
      return Verdict.Forward;
    }
    if (name !== undefined && TERMINAL_EVENTS.has(name)) this.#sawDone = true;
    if (this.#onObjectId !== undefined) this.#findObjectId(data);
    // One pass over the data; ordinary deltas (`"usage":null`, no error) never reach JSON.parse.
    if (name !== 'error' && !MAY_MATTER.test(data)) return Verdict.Forward;

    // Decided on the text, before parsing: an error event that is not valid JSON is scanned too.
    const errorText = this.#secrets.length > 0 && (name === 'error' || ERROR_TEXT.test(data));
    const obj = parseObject(data);
    if (obj === undefined) {
      if (name === 'error') this.#error ??= { message: messageOf(data.slice(0, MAX_MESSAGE_CHARS)), code: null, type: null };
      return errorText ? Verdict.Redact : Verdict.Forward;
    }
    // Responses events normally come with an `event:` line; some compatible servers omit it.
    if (typeof obj.type === 'string' && TERMINAL_EVENTS.has(obj.type)) this.#sawDone = true;
    const error = errorFrom(obj, name);
    if (error !== undefined) this.#error ??= error;
    const usage = usageFromObject(obj);
    if (usage !== undefined) {
      this.#usage = usage;
      // Only the include_usage chunk: empty `choices` AND a usage object. Azure's first chunk
      // (empty choices, no usage) and Moonshot's usage inside choices[0] are forwarded.
      if (this.#drop && error === undefined && Array.isArray(obj.choices) && obj.choices.length === 0 && isObject(obj.usage)) return Verdict.Drop;
    }
    return errorText || (this.#secrets.length > 0 && error !== undefined) ? Verdict.Redact : Verdict.Forward;
  }

  #findObjectId(data: string): void {
    // The id comes with the first event; a stream whose first events have none never gets one.
    if (this.#eventCount > 4) this.#onObjectId = undefined;
    const obj = parseObject(data);
    if (obj === undefined) return;
    const holder = isObject(obj.response) ? obj.response : obj;
    if (typeof holder.id !== 'string' || holder.id === '') return;
    const report = this.#onObjectId!;
    this.#onObjectId = undefined;
    report(holder.id);
  }

  /**
   * Forwards bytes before `settled` except the dropped events, with secrets blanked in the
   * events to redact; keeps the rest for later.
   */
  #release(chunk: Buffer, settled: number): Buffer | undefined {
    const chunkStart = this.#received;
    this.#received += chunk.length;
    // Usual case: nothing held, nothing edited, the chunk ends between events.
    if (this.#heldLen === 0 && this.#edits.length === 0 && settled === this.#received) return chunk.length > 0 ? chunk : undefined;
    const heldStart = chunkStart - this.#heldLen;
    const pieces: Buffer[] = [];
    const edits = this.#edits;
    let pos = heldStart;
    // Some piece is a view of `#held` or a rewritten event, so `chunk` cannot stand for the output.
    let copied = false;
    for (let k = 0; k < edits.length; k += 3) {
      const start = edits[k] as number;
      const end = edits[k + 1] as number;
      copied = this.#take(pieces, chunk, chunkStart, pos, start) || copied;
      if (edits[k + 2] === Verdict.Redact) {
        const event: Buffer[] = [];
        this.#take(event, chunk, chunkStart, Math.max(pos, start), end);
        let bytes = event.length === 1 ? (event[0] as Buffer) : Buffer.concat(event);
        for (const secret of this.#secrets) bytes = replaceAll(bytes, secret, REDACTED);
        pieces.push(bytes);
        copied = true;
      }
      pos = Math.max(pos, end);
    }
    copied = this.#take(pieces, chunk, chunkStart, pos, settled) || copied;
    pos = Math.max(pos, settled);
    edits.length = 0;

    let out: Buffer | undefined;
    if (pieces.length === 1 && !copied) {
      const only = pieces[0] as Buffer;
      out = only.length === chunk.length ? chunk : only;
    } else if (pieces.length > 0) {
      // Copies: `#held` is reused below, and the client needs one buffer.
      out = Buffer.concat(pieces);
    }
    this.#hold(chunk, chunkStart, heldStart, pos);
    return out;
  }

  /** Appends views of the received bytes [from, to); returns true if some came from `#held`. */
  #take(pieces: Buffer[], chunk: Buffer, chunkStart: number, from: number, to: number): boolean {
    if (from >= to) return false;
    let usedHeld = false;
    if (from < chunkStart && this.#held !== undefined) {
      const heldStart = chunkStart - this.#heldLen;
      const stop = Math.min(to, chunkStart);
      pieces.push(this.#held.subarray(from - heldStart, stop - heldStart));
      usedHeld = true;
      from = stop;
    }
    if (from < to) pieces.push(chunk.subarray(from - chunkStart, to - chunkStart));
    return usedHeld;
  }

  /** Keeps the received bytes from `from` on (they all sit at the end of held + chunk). */
  #hold(chunk: Buffer, chunkStart: number, heldStart: number, from: number): void {
    const keep = this.#received - from;
    if (keep <= 0) {
      this.#heldLen = 0;
      // Do not pin a buffer grown for one large event for the rest of a long stream.
      if (this.#held !== undefined && this.#held.length > KEEP_SCRATCH_BYTES) this.#held = undefined;
      return;
    }
    const fromHeld = Math.max(chunkStart - from, 0);
    let target = this.#held;
    if (target === undefined || target.length < keep) {
      target = Buffer.allocUnsafe(Math.max(keep, (target?.length ?? 0) * 2, 1024));
    }
    if (fromHeld > 0 && this.#held !== undefined) this.#held.copy(target, 0, from - heldStart, this.#heldLen);
    chunk.copy(target, fromHeld, Math.max(from - chunkStart, 0));
    this.#held = target;
    this.#heldLen = keep;
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseObject(data: string): JsonObject | undefined {
  try {
    const parsed: unknown = JSON.parse(data);
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** OpenRouter sends numeric codes; Azure sends "429"; keep one type for callers. */
function codeOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  return typeof value === 'number' && Number.isFinite(value) ? String(value) : null;
}

function messageOf(value: unknown): string {
  return typeof value === 'string' && value !== '' ? value : 'Upstream stream error';
}

/**
 * A top-level `error` (chat chunks, OpenRouter, the nested Responses form) or a flat Responses /
 * Assistants error event (`type:"error"` or `event: error` with `code`/`message` at the top).
 */
function errorFrom(obj: JsonObject, name: string | undefined): UpstreamStreamError | undefined {
  const error = obj.error;
  if (isObject(error)) return { message: messageOf(error.message), code: codeOf(error.code), type: stringOrNull(error.type) };
  if (typeof error === 'string' && error !== '') return { message: error, code: null, type: null };
  if (name !== 'error' && obj.type !== 'error') return undefined;
  // In the flat Responses form `type` is the event type, not an error type.
  return { message: messageOf(obj.message), code: codeOf(obj.code), type: obj.type === 'error' ? null : stringOrNull(obj.type) };
}

function pushString(parts: string[], value: unknown): void {
  if (typeof value === 'string' && value !== '') parts.push(value);
}

/** Generated text of one event: chat deltas, completions text, Responses text deltas. */
function collectText(event: SseEvent, parts: string[]): void {
  if (event.data === '[DONE]') return;
  const obj = parseObject(event.data);
  if (obj === undefined) return;
  if (typeof obj.type === 'string' && TEXT_DELTA_EVENTS.has(obj.type)) {
    pushString(parts, obj.delta);
    return;
  }
  if (!Array.isArray(obj.choices)) return;
  for (const choice of obj.choices) {
    if (!isObject(choice)) continue;
    pushString(parts, choice.text);
    const delta = choice.delta;
    if (!isObject(delta)) continue;
    pushString(parts, delta.content);
    pushString(parts, delta.reasoning_content);
    pushString(parts, delta.reasoning);
    pushString(parts, delta.refusal);
    if (isObject(delta.function_call)) pushString(parts, delta.function_call.arguments);
    if (!Array.isArray(delta.tool_calls)) continue;
    for (const call of delta.tool_calls) {
      if (isObject(call) && isObject(call.function)) pushString(parts, call.function.arguments);
    }
  }
}
