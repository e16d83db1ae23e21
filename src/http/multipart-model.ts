import { Readable } from 'node:stream';
import { Busboy, type BusboyFileStream, type BusboyInstance } from '@fastify/busboy';
import { GatewayError } from '../errors/index.js';
import { tooLarge } from './read-body.js';

// The `model` field of a `multipart/form-data` upload (RFC 7578), read while the upload streams
// through to the upstream: audio transcriptions and translations, image edits and variations
// carry the model next to a file of up to tens of megabytes, often after it (SDKs append the
// file first), so the body cannot be read whole first.
//
// The bytes seen until the field is read are held (at most `limit`) and replayed; the rest of
// the source follows them unchanged. The parser keeps reading every byte on its way through,
// because the upstream reads the whole form: a second `model` part later in the body would be
// the one many servers use (Starlette keeps the last value), so it fails the body stream before
// the chunk that carries it is passed on.
//
// Known gap: busboy skips, unseen, a part whose Content-Disposition is missing or not
// `form-data`; a lenient upstream that reads `attachment; name="model"` as a field would see a
// model this reader did not.
// https://www.rfc-editor.org/rfc/rfc7578

export interface MultipartModelOptions {
  /** The body limit: bytes that may be held while the field is still unknown. */
  limit: number;
  /** The longest model value accepted, in bytes. */
  maxModelBytes: number;
}

export interface MultipartModel {
  /** The `model` field, or undefined when the body ended without one. */
  model: string | undefined;
  /**
   * The caller's bytes, exactly: the held ones, then the rest of the source. It fails with a
   * `GatewayError` (`invalid_request`) if the rest turns out to carry a second `model` part or a
   * malformed form, or the client goes away; a failure found while nobody listens for errors
   * waits for the first read. Destroying it stops reading and drains the rest of the source
   * (the connection stays usable for the answer).
   */
  body: Readable;
}

// The only transfer encodings that leave a part's bytes as sent. RFC 7578 §4.7 deprecates the
// header, but some parsers (python-multipart's FormParser) still decode base64 and
// quoted-printable, and busboy does not: a model read here as "Z3B0LTRv" would be "gpt-4o" there.
const IDENTITY_ENCODINGS = new Set(['7bit', '8bit', 'binary']);
const MULTIPART_TYPE = /^\s*multipart\/form-data\s*(?:;|$)/i;
// Fatal so that invalid UTF-8 is refused rather than read as U+FFFD; the BOM kept so the name
// is the bytes the upstream will decode (RFC 7578 §5.1.2: UTF-8 unless said otherwise).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const malformed = (detail: string): GatewayError => new GatewayError('invalid_request', `The multipart body is malformed: ${detail}.`);
const invalidModel = (detail: string): GatewayError => new GatewayError('invalid_request', `The multipart "model" field ${detail}.`, { param: 'model' });

/**
 * Reads the `model` field of a multipart upload from `source` and hands back a body that replays
 * every byte. Resolves as soon as the field has been read (or the form ended without one); rejects
 * with `GatewayError` `invalid_request` (bad field, malformed form, source failure) or
 * `body_too_large` (more than `limit` bytes before the field).
 */
export function readMultipartModel(source: Readable, contentType: string, options: MultipartModelOptions): Promise<MultipartModel> {
  if (!MULTIPART_TYPE.test(contentType)) {
    return Promise.reject(new GatewayError('invalid_content_type', 'The body must be multipart/form-data.'));
  }
  if (source.destroyed || source.readableEnded) {
    return Promise.reject(new GatewayError('invalid_request', 'The request body was already consumed or closed.'));
  }
  return new Promise((resolve, reject) => {
    const body = new UploadBody(source, options, (model) => resolve({ model, body }), reject);
    try {
      body.start(contentType);
    } catch (error) {
      body.fail(error instanceof GatewayError ? error : malformed(String(error)));
    }
  });
}

/**
 * The replaying body. Chunks of the source go through the parser one at a time (the source is
 * paused until the parser has taken a chunk), then into `queue`; before the field is known the
 * queue only grows (that is the holding), afterwards it is handed to `push` as fast as the reader
 * takes it, and the source is resumed only once the queue is empty and `push` asked for more.
 * No chunk is copied or re-sliced.
 */
class UploadBody extends Readable {
  private parser: BusboyInstance | undefined;
  private readonly queue: (Buffer | undefined)[] = [];
  private head = 0;
  private heldBytes = 0;
  private answered = false;
  private modelSeen = false;
  /** A chunk is inside the parser; its write callback will continue the flow. */
  private parsing = false;
  private sourceEnded = false;
  /** The parser finished a well-formed form (it only does once the source has ended). */
  private formEnded = false;
  /** Failed or destroyed: nothing more is read, pushed or settled. */
  private stopped = false;
  private flushing = false;
  private pushedEnd = false;
  /** A failure found after the answer, kept for the reader (see `fail`). */
  private failure: GatewayError | undefined;

  constructor(
    private readonly source: Readable,
    private readonly options: MultipartModelOptions,
    private readonly onModel: (model: string | undefined) => void,
    private readonly onFailure: (error: GatewayError) => void,
  ) {
    super();
  }

  start(contentType: string): void {
    let parser: BusboyInstance;
    try {
      parser = this.createParser(contentType);
    } catch (error) {
      const message = (error as Error).message;
      throw /boundary/i.test(message) ? new GatewayError('invalid_request', 'The multipart/form-data Content-Type has no boundary parameter.') : malformed(message.replace(/\.$/, ''));
    }
    this.parser = parser;
    parser.on('file', this.onModelPart);
    parser.on('finish', this.onFormEnd);
    parser.on('error', (error: unknown) => this.fail(malformed(error instanceof Error ? error.message.replace(/\.$/, '') : String(error))));
    this.source.on('data', this.onData);
    this.source.on('end', this.onSourceEnd);
    this.source.on('error', this.onSourceError);
    this.source.on('close', this.onSourceClose);
    this.source.resume();
  }

  private createParser(contentType: string): BusboyInstance {
    return Busboy({
      headers: { 'content-type': contentType },
      // Only `model` parts become "files": their raw bytes, with no charset guess, arrive as a
      // stream as soon as their headers are read. Every other part, the uploaded file included,
      // is a field capped at 0 bytes, i.e. parsed past and never buffered.
      isPartAFile: (name) => name === 'model',
      limits: { fileSize: this.options.maxModelBytes, fieldSize: 0 },
    });
  }

  private readonly onModelPart = (_name: string, part: BusboyFileStream, filename: string | undefined, encoding: string): void => {
    // Busboy reports a body that ends inside the part here as well as on itself; unheard, it would throw.
    part.on('error', () => this.fail(malformed('the body ended inside the "model" part')));
    // Busboy passes a filename exactly when the part's Content-Disposition has one (even empty).
    if (filename !== undefined) return this.fail(invalidModel('is a file part; send the model name as a plain field'));
    if (this.modelSeen) return this.fail(invalidModel('appears more than once'));
    this.modelSeen = true;
    if (!IDENTITY_ENCODINGS.has(encoding)) return this.fail(invalidModel(`may not use Content-Transfer-Encoding "${encoding.slice(0, 32)}"`));
    const bytes: Buffer[] = [];
    part.on('data', (chunk: Buffer) => bytes.push(chunk));
    part.on('limit', () => this.fail(invalidModel(`is longer than ${this.options.maxModelBytes} bytes`)));
    part.on('end', () => {
      if (this.stopped || part.truncated) return;
      let model: string;
      try {
        model = utf8.decode(Buffer.concat(bytes));
      } catch {
        return this.fail(invalidModel('is not valid UTF-8'));
      }
      this.answer(model);
    });
  };

  private readonly onFormEnd = (): void => {
    this.formEnded = true;
    // With a model part the answer comes from its own end, which busboy awaits before finishing.
    if (!this.modelSeen) this.answer(undefined);
    this.flush();
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.stopped) return;
    this.source.pause();
    if (!this.answered) {
      this.heldBytes += chunk.length;
      if (this.heldBytes > this.options.limit) return this.fail(tooLarge(this.options.limit));
    }
    this.parsing = true;
    this.parser!.write(chunk, () => {
      this.parsing = false;
      if (this.stopped) return;
      // Queued only once parsed: a chunk that reveals a second `model` part is never passed on.
      this.queue.push(chunk);
      this.flush();
    });
  };

  private readonly onSourceEnd = (): void => {
    this.sourceEnded = true;
    // Writable ordering: a chunk still inside the parser is finished first.
    if (!this.stopped) this.parser!.end();
  };

  private readonly onSourceError = (error: Error): void => {
    this.fail(error instanceof GatewayError ? error : new GatewayError('invalid_request', 'The client closed the connection before sending the whole body.', { cause: error }));
  };

  private readonly onSourceClose = (): void => {
    if (!this.sourceEnded) this.onSourceError(new Error('The request body closed before its end.'));
  };

  private answer(model: string | undefined): void {
    if (this.stopped || this.answered) return;
    this.answered = true;
    this.onModel(model);
    this.flush();
  }

  /** Moves parsed chunks downstream (once answered) and asks the source for more when there is room. */
  private flush(): void {
    if (this.stopped || this.flushing) return;
    this.flushing = true;
    try {
      if (this.answered) {
        while (this.head < this.queue.length) {
          const chunk = this.queue[this.head]!;
          // Released as soon as it is pushed: the held chunks do not outlive their replay.
          this.queue[this.head++] = undefined;
          if (!this.push(chunk)) return;
        }
        this.queue.length = 0;
        this.head = 0;
        if (this.sourceEnded && this.formEnded && !this.parsing) {
          if (!this.pushedEnd) this.push(null);
          this.pushedEnd = true;
          return;
        }
      }
      if (!this.parsing && !this.sourceEnded) this.source.resume();
    } finally {
      this.flushing = false;
    }
  }

  override read(size?: number): unknown {
    if (this.failure !== undefined && !this.destroyed) {
      this.destroy(this.failure);
      return null;
    }
    return super.read(size);
  }

  override _read(): void {
    this.flush();
  }

  /** Rejects the answer, or fails the body once it has been handed out. */
  fail(error: GatewayError): void {
    if (this.stopped) return;
    this.stop();
    if (!this.answered) {
      this.onFailure(error);
    } else if (this.listenerCount('error') > 0) {
      this.destroy(error);
    } else {
      // The caller may still be deciding (admission, a database round trip) before it reads the
      // body; an 'error' emitted with nobody listening would take the process down. It gets the
      // error with its first read instead.
      this.failure = error;
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.stop();
    callback(error);
  }

  /**
   * Stops reading and lets the rest of the source drain unread, as `readBody` does: destroying
   * it would close the client's connection before the gateway can answer.
   */
  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.queue.length = 0;
    this.source.off('data', this.onData);
    this.source.off('end', this.onSourceEnd);
    this.source.off('error', this.onSourceError);
    this.source.off('close', this.onSourceClose);
    // A late error of a source nobody reads any more must not crash the process.
    this.source.on('error', () => undefined);
    if (!this.source.destroyed) this.source.resume();
  }
}
