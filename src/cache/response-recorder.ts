import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

type Callback = (error?: Error | null) => void;

/**
 * Records what a route writes to the client — the status and content type of its head, the body
 * bytes — up to `maxBytes`, without delaying or changing a byte: the response's own `writeHead`,
 * `write` and `end` are called as they were, the recorder only keeps a reference to each chunk.
 * Installed on one response (its own properties shadow the prototype's), only for a request the
 * cache will store; every route's way of writing goes through these three calls (Fastify's
 * `send`, a hijacked relay, an event stream), so the recorder needs nothing from the route.
 */
export class ResponseRecorder {
  status: number | undefined = undefined;
  contentType: string | undefined = undefined;
  /** More than `maxBytes` was written: nothing is kept. */
  overflowed = false;
  #chunks: Buffer[] = [];
  #bytes = 0;

  constructor(
    private readonly response: ServerResponse,
    private readonly maxBytes: number,
  ) {
    const writeHead = response.writeHead;
    const write = response.write;
    const end = response.end;
    // Why the casts: Node's overloads of these three cannot be spelled as one implementation signature.
    response.writeHead = ((status: number, ...rest: unknown[]) => {
      this.status = status;
      const headers = rest.find((arg) => arg !== null && typeof arg === 'object') as OutgoingHttpHeaders | string[] | undefined;
      this.contentType = contentTypeOf(headers) ?? this.#fromResponse();
      return Reflect.apply(writeHead, response, [status, ...rest]) as ServerResponse;
    }) as ServerResponse['writeHead'];
    response.write = ((chunk: unknown, encoding?: unknown, callback?: unknown) => {
      this.#keep(chunk, encoding);
      return Reflect.apply(write, response, [chunk, encoding, callback]) as boolean;
    }) as ServerResponse['write'];
    response.end = ((chunk?: unknown, encoding?: unknown, callback?: unknown) => {
      if (typeof chunk !== 'function') this.#keep(chunk, encoding);
      return Reflect.apply(end, response, [chunk, encoding, callback as Callback | undefined]) as ServerResponse;
    }) as ServerResponse['end'];
  }

  /** The body written, when it was kept whole. */
  body(): Buffer | undefined {
    if (this.overflowed) return undefined;
    return this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#bytes);
  }

  #keep(chunk: unknown, encoding: unknown): void {
    if (this.overflowed || chunk === undefined || chunk === null) return;
    let bytes: Buffer;
    if (typeof chunk === 'string') bytes = Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    else if (Buffer.isBuffer(chunk)) bytes = chunk;
    else if (chunk instanceof Uint8Array) bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else return;
    if (bytes.length === 0) return;
    this.#bytes += bytes.length;
    if (this.#bytes > this.maxBytes) {
      this.overflowed = true;
      this.#chunks = [];
      return;
    }
    this.#chunks.push(bytes);
  }

  #fromResponse(): string | undefined {
    const value = this.response.getHeader('content-type');
    return typeof value === 'string' ? value : undefined;
  }
}

function contentTypeOf(headers: OutgoingHttpHeaders | string[] | undefined): string | undefined {
  if (headers === undefined) return undefined;
  if (Array.isArray(headers)) {
    // The raw form: name, value, name, value…
    for (let i = 0; i + 1 < headers.length; i += 2) if (headers[i]!.toLowerCase() === 'content-type') return headers[i + 1];
    return undefined;
  }
  for (const name in headers) {
    if (name.toLowerCase() !== 'content-type') continue;
    const value = headers[name];
    return typeof value === 'string' ? value : undefined;
  }
  return undefined;
}
