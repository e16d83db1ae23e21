// Incremental, byte-level Server-Sent Events decoder.
// Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
//
// Lines are found on bytes (LF, CRLF or CR), so a multi-byte UTF-8 character split across chunks
// is always decoded whole: a line is only decoded once all of its bytes have arrived.
//
// Vocabulary used below:
// - a *block* starts at its first field line (`data:`, `event:`, `id:`, any non-comment line) and
//   ends with the blank line after it. `raw` is exactly the bytes of a block, so comment lines
//   after the first field are inside `raw`; comment lines before it are not.
// - *comment-only blocks* (`: keep-alive\n\n`, `: OPENROUTER PROCESSING\n\n`) are never returned,
//   and neither are blocks without a `data` field (`event: ping\n\n`, `id: 7\n\n`), as in the spec.
//   Their bytes belong to no event; a consumer that forwards bytes must forward by offsets
//   (`start`/`end`, `settledOffset`), never by re-joining `raw`.
//
// Deviations from the spec, on purpose:
// - `end()` dispatches an unterminated final event that has data (the spec discards it), because
//   some upstreams close right after `data: [DONE]` or the usage chunk.
// - A blank line ending in a CR at the very end of a chunk is dispatched when the next byte is
//   known (or at `end()`), so that a following LF lands in the same `raw` whatever the split.
//
// The decoder keeps references to pushed chunks (lazy `raw`), so callers must not mutate a chunk
// after pushing it, as with any Node.js stream.

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
const BOM = [0xef, 0xbb, 0xbf] as const;
const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;
const KEEP_SCRATCH_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);

export interface SseEvent {
  event: string | undefined;
  data: string;
  /** The exact bytes of the event block, terminating blank line included. */
  raw: Buffer;
}

/** An event plus where its `raw` sits in the decoded byte stream (absolute offsets). */
export interface DecodedSseEvent extends SseEvent {
  readonly start: number;
  readonly end: number;
}

export interface SseDecoderOptions {
  /** An event block longer than this is dropped and counted. Default 1 MiB. */
  maxEventBytes?: number;
}

// `raw` is built only when read: the usage tap never reads it, and most events sit inside a
// single chunk where it is a view, not a copy.
class DecodedEvent implements DecodedSseEvent {
  readonly #head: Buffer | undefined;
  readonly #chunk: Buffer;
  readonly #from: number;
  readonly #to: number;
  #raw: Buffer | undefined;

  constructor(
    readonly event: string | undefined,
    readonly data: string,
    readonly start: number,
    readonly end: number,
    head: Buffer | undefined,
    chunk: Buffer,
    from: number,
    to: number,
  ) {
    this.#head = head;
    this.#chunk = chunk;
    this.#from = from;
    this.#to = to;
  }

  get raw(): Buffer {
    if (this.#raw === undefined) {
      const tail = this.#chunk.subarray(this.#from, this.#to);
      this.#raw = this.#head === undefined ? tail : Buffer.concat([this.#head, tail]);
    }
    return this.#raw;
  }
}

// What is known about a line whose end has not arrived yet.
const LineState = { None: 0, Comment: 1, Field: 2, Skipped: 3 } as const;
type LineState = (typeof LineState)[keyof typeof LineState];

export class SseDecoder {
  readonly #max: number;
  #dropped = 0;

  /** Bytes pushed so far; offsets are absolute positions in this stream. */
  #total = 0;
  /** Absolute offset of `chunk[0]` while a chunk is being decoded. */
  #chunkAbs = 0;
  /** Last offset at which no field line, partial line or pending block was open. */
  #boundary = 0;

  #bomChecked = false;
  #bomHeld: Buffer | undefined;

  /** The previous chunk ended in CR: a leading LF in the next one ends the same line. */
  #skipLF = false;
  #partial: LineState = LineState.None;
  /** Where the partial field line starts inside `#blockBuf`. */
  #lineStartInBlock = 0;

  #inBlock = false;
  /** A blank line ended in CR at a chunk end; the block ends once the next byte is known. */
  #blockEndPending = false;
  #blockStart = 0;
  /** Bytes of the open block that arrived in earlier chunks (copied: chunks are not kept). */
  #blockBuf: Buffer | undefined;
  #blockLen = 0;
  #eventName: string | undefined;
  #data: string | undefined;
  /** Inside an oversize block: everything up to its blank line is ignored. */
  #skipping = false;

  constructor(opts: SseDecoderOptions = {}) {
    const max = opts.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError('maxEventBytes must be a positive integer');
    this.#max = max;
  }

  get droppedEvents(): number {
    return this.#dropped;
  }

  /** True when nothing partial is pending: a comment may be inserted here without harm. */
  get atEventBoundary(): boolean {
    return this.#boundary === this.#total;
  }

  /** Offset of the last position that was an event boundary (see `atEventBoundary`). */
  get boundaryOffset(): number {
    return this.#boundary;
  }

  /**
   * Every byte before this offset is either in an event already returned or in no event at all
   * (comments, blank lines, data-less or oversize blocks), so a relay may forward it now.
   */
  get settledOffset(): number {
    if (this.#bomHeld !== undefined) return 0;
    if (this.#inBlock) return this.#blockStart;
    return this.#total;
  }

  push(chunk: Uint8Array): DecodedSseEvent[] {
    if (chunk.byteLength === 0) return [];
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const out: DecodedSseEvent[] = [];
    let start = 0;
    if (!this.#bomChecked) {
      // The spec strips one leading U+FEFF; it may arrive split across the first chunks.
      if (this.#bomHeld !== undefined) buf = Buffer.concat([this.#bomHeld, buf]);
      this.#total = buf.length;
      if (buf.length < BOM.length && isBomPrefix(buf)) {
        this.#bomHeld = Buffer.from(buf);
        return out;
      }
      this.#bomHeld = undefined;
      this.#bomChecked = true;
      if (isBomPrefix(buf)) {
        start = BOM.length;
        this.#boundary = start;
      }
    } else {
      this.#total += buf.length;
    }
    this.#chunkAbs = this.#total - buf.length;
    this.#decode(buf, start, out);
    return out;
  }

  /** Finishes the stream: a final event with data but no blank line is still dispatched. */
  end(): DecodedSseEvent[] {
    const out: DecodedSseEvent[] = [];
    if (this.#bomHeld !== undefined) {
      const held = this.#bomHeld;
      this.#bomHeld = undefined;
      this.#bomChecked = true;
      this.#chunkAbs = 0;
      this.#decode(held, 0, out);
    }
    this.#chunkAbs = this.#total;
    this.#skipLF = false;
    if (this.#blockEndPending) {
      this.#endBlock(EMPTY, 0, out);
    } else {
      if (this.#partial === LineState.Field && this.#blockBuf !== undefined) {
        const line = this.#blockBuf.subarray(this.#lineStartInBlock, this.#blockLen);
        this.#field(line, 0, line.length, this.#total);
      }
      if (this.#inBlock) this.#endBlock(EMPTY, 0, out);
    }
    this.#partial = LineState.None;
    this.#skipping = false;
    this.#boundary = this.#total;
    return out;
  }

  #decode(buf: Buffer, start: number, out: DecodedSseEvent[]): void {
    const len = buf.length;
    let i = start;
    if (this.#skipLF) {
      this.#skipLF = false;
      if (buf[i] === LF) i++;
      if (this.#blockEndPending) this.#endBlock(buf, i, out);
      else if (!this.#inBlock && !this.#skipping) this.#boundary = this.#chunkAbs + i;
    }
    // -2: not searched yet; -1: none left in this chunk. Most streams have no CR at all, so the
    // CR search runs once per chunk.
    let lf = -2;
    let cr = -2;
    while (i < len) {
      if (lf !== -1 && lf < i) lf = buf.indexOf(LF, i);
      if (cr !== -1 && cr < i) cr = buf.indexOf(CR, i);
      if (lf === -1 && cr === -1) break;
      const eol = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
      let next = eol + 1;
      if (eol === cr) {
        if (next < len) {
          if (buf[next] === LF) next++;
        } else {
          this.#skipLF = true;
        }
      }
      this.#line(buf, i, eol, next, out);
      i = next;
    }
    if (i < len && this.#partial === LineState.None) {
      if (this.#skipping) this.#partial = LineState.Skipped;
      else if (buf[i] === COLON) this.#partial = LineState.Comment;
      else {
        if (!this.#inBlock) this.#openBlock(this.#chunkAbs + i);
        this.#partial = LineState.Field;
        this.#lineStartInBlock = this.#chunkAbs + i - this.#blockStart;
      }
    }
    if (this.#inBlock) this.#keepBlockBytes(buf);
  }

  /** One complete line: bytes [from, eol) of `buf`, its line ending ends at `next`. */
  #line(buf: Buffer, from: number, eol: number, next: number, out: DecodedSseEvent[]): void {
    const nextAbs = this.#chunkAbs + next;
    const partial = this.#partial;
    if (partial !== LineState.None) {
      this.#partial = LineState.None;
      if (partial === LineState.Field && this.#blockBuf !== undefined) {
        const line = Buffer.concat([this.#blockBuf.subarray(this.#lineStartInBlock, this.#blockLen), buf.subarray(from, eol)]);
        this.#field(line, 0, line.length, nextAbs);
      } else if (partial === LineState.Comment && !this.#inBlock && !this.#skipping) {
        this.#boundary = nextAbs;
      }
      return;
    }
    if (eol === from) {
      if (this.#skipping) {
        this.#skipping = false;
        this.#boundary = nextAbs;
      } else if (this.#inBlock) {
        if (eol + 1 === buf.length && buf[eol] === CR) this.#blockEndPending = true;
        else this.#endBlock(buf, next, out);
      } else {
        this.#boundary = nextAbs;
      }
      return;
    }
    if (buf[from] === COLON || this.#skipping) {
      if (!this.#inBlock && !this.#skipping) this.#boundary = nextAbs;
      return;
    }
    if (!this.#inBlock) this.#openBlock(this.#chunkAbs + from);
    this.#field(buf, from, eol, nextAbs);
  }

  #field(buf: Buffer, from: number, eol: number, nextAbs: number): void {
    if (nextAbs - this.#blockStart > this.#max) {
      // Checked before decoding so an oversize data line is never turned into a string.
      this.#dropOversize();
      return;
    }
    let colon = from;
    while (colon < eol && buf[colon] !== COLON) colon++;
    const nameLen = colon - from;
    let valueStart = colon + 1;
    if (valueStart < eol && buf[valueStart] === SPACE) valueStart++;
    if (valueStart > eol) valueStart = eol;
    if (nameLen === 4 && buf[from] === 0x64 && buf[from + 1] === 0x61 && buf[from + 2] === 0x74 && buf[from + 3] === 0x61) {
      const value = buf.toString('utf8', valueStart, eol);
      this.#data = this.#data === undefined ? value : `${this.#data}\n${value}`;
    } else if (nameLen === 5 && buf[from] === 0x65 && buf[from + 1] === 0x76 && buf[from + 2] === 0x65 && buf[from + 3] === 0x6e && buf[from + 4] === 0x74) {
      const value = buf.toString('utf8', valueStart, eol);
      this.#eventName = value === '' ? undefined : value;
    }
    // `id`, `retry` and unknown fields are ignored: the gateway never reconnects upstream.
  }

  #openBlock(at: number): void {
    this.#inBlock = true;
    this.#blockStart = at;
    this.#blockLen = 0;
  }

  /** The block ends at `buf[endRel]`; dispatch it if it carried data and fits. */
  #endBlock(buf: Buffer, endRel: number, out: DecodedSseEvent[]): void {
    const endAbs = this.#chunkAbs + endRel;
    if (endAbs - this.#blockStart > this.#max) {
      this.#dropped++;
    } else if (this.#data !== undefined) {
      const head = this.#blockLen > 0 && this.#blockBuf !== undefined ? this.#blockBuf.subarray(0, this.#blockLen) : undefined;
      const from = head === undefined ? this.#blockStart - this.#chunkAbs : 0;
      out.push(new DecodedEvent(this.#eventName, this.#data, this.#blockStart, endAbs, head, buf, from, endRel));
      // The event may hold a view of the buffer, so the next block gets a fresh one.
      if (head !== undefined) this.#blockBuf = undefined;
    }
    this.#resetBlock();
    this.#boundary = endAbs;
  }

  #dropOversize(): void {
    this.#dropped++;
    this.#resetBlock();
    this.#blockBuf = undefined;
    this.#skipping = true;
    if (this.#partial === LineState.Field) this.#partial = LineState.Skipped;
  }

  #resetBlock(): void {
    // Do not pin a buffer grown for one large block for the rest of a long stream.
    if (this.#blockBuf !== undefined && this.#blockBuf.length > KEEP_SCRATCH_BYTES) this.#blockBuf = undefined;
    this.#inBlock = false;
    this.#blockEndPending = false;
    this.#blockLen = 0;
    this.#eventName = undefined;
    this.#data = undefined;
  }

  /** The open block continues in the next chunk: copy its bytes from this one. */
  #keepBlockBytes(buf: Buffer): void {
    const from = Math.max(this.#blockStart - this.#chunkAbs, 0);
    const needed = this.#blockLen + buf.length - from;
    if (needed > this.#max) {
      if (this.#blockEndPending) {
        // Its blank line was already seen: drop just this block, do not skip the next one.
        this.#dropped++;
        this.#resetBlock();
        this.#blockBuf = undefined;
        this.#boundary = this.#total;
      } else {
        this.#dropOversize();
      }
      return;
    }
    let target = this.#blockBuf;
    if (target === undefined || target.length < needed) {
      const grown = Buffer.allocUnsafe(Math.min(Math.max(needed, (target?.length ?? 0) * 2, 256), this.#max));
      if (target !== undefined) target.copy(grown, 0, 0, this.#blockLen);
      target = grown;
      this.#blockBuf = grown;
    }
    buf.copy(target, this.#blockLen, from);
    this.#blockLen = needed;
  }
}

function isBomPrefix(buf: Buffer): boolean {
  const n = Math.min(buf.length, BOM.length);
  for (let k = 0; k < n; k++) if (buf[k] !== BOM[k]) return false;
  return true;
}
