import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

type ResponseBody = Dispatcher.ResponseData['body'];

/**
 * A response body that was partly read (to look inside an error) and must still reach the
 * caller whole: the bytes already read, then the rest of the original stream. It offers the
 * body mixin the routes use (`text()`, `json()`, `dump()`…) like undici's own body.
 */
class ReplayBody extends Readable {
  private used = false;
  private index = 0;

  constructor(
    private readonly head: readonly Buffer[],
    private readonly rest: AsyncIterator<Buffer> | undefined,
    private readonly original: ResponseBody,
  ) {
    super();
  }

  override _read(): void {
    if (this.index < this.head.length) {
      this.push(this.head[this.index++]);
      return;
    }
    if (!this.rest) {
      this.push(null);
      return;
    }
    this.rest.next().then(
      (next) => this.push(next.done ? null : next.value),
      (error: Error) => this.destroy(error),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.original.destroyed) this.original.destroy(error ?? undefined);
    callback(error);
  }

  get bodyUsed(): boolean {
    return this.used;
  }

  async bytes(): Promise<Uint8Array> {
    this.used = true;
    const chunks: Buffer[] = [];
    for await (const chunk of this) chunks.push(chunk as Buffer);
    return new Uint8Array(Buffer.concat(chunks));
  }

  async text(): Promise<string> {
    return Buffer.from(await this.bytes()).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.bytes();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async blob(): Promise<Blob> {
    return new Blob([await this.bytes()]);
  }

  async formData(): Promise<never> {
    throw new Error('formData is not supported');
  }

  async dump(): Promise<void> {
    this.used = true;
    this.destroy();
  }
}

export interface PeekedBody {
  /** The first bytes of the body as text (all of it when `complete`). */
  text: string;
  complete: boolean;
  /** The whole body again, for the caller. */
  body: ResponseBody;
}

/** Reads up to `limit` bytes of a response body and hands back an equivalent body to relay. */
export async function peekBody(body: ResponseBody, limit: number): Promise<PeekedBody> {
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let size = 0;
  let complete = false;
  while (size < limit) {
    const next = await iterator.next();
    if (next.done) {
      complete = true;
      break;
    }
    head.push(next.value);
    size += next.value.length;
  }
  const text = Buffer.concat(head).toString('utf8');
  // Why the cast: undici's BodyReadable type is a class we cannot construct; ReplayBody offers the same surface.
  const replay = new ReplayBody(head, complete ? undefined : iterator, body) as unknown as ResponseBody;
  return { text, complete, body: replay };
}

/** Error bodies are read this far to blank out upstream keys an upstream may have echoed; a real one is never longer. */
const ERROR_PEEK_LIMIT = 64 * 1024;

/**
 * An upstream's error body as it may reach the client: some providers echo the key a request was
 * sent with in their error message, so a body read whole is given back with `blank` applied to its
 * text (the upstream keys blanked out), and `headers['content-length']` fixed when that changed it.
 * Rejects as reading the body does.
 */
export async function blankedErrorBody(body: ResponseBody, blank: (text: string) => string, headers: Record<string, string | string[]>): Promise<ResponseBody> {
  const peeked = await peekBody(body, ERROR_PEEK_LIMIT);
  if (!peeked.complete) return peeked.body;
  const blanked = blank(peeked.text);
  if (blanked === peeked.text) return peeked.body;
  headers['content-length'] = String(Buffer.byteLength(blanked));
  // Why the cast: the routes relay a stream of Buffers; undici's body type is a class we cannot construct.
  return Readable.from([Buffer.from(blanked)]) as unknown as ResponseBody;
}
