import { randomBytes } from 'node:crypto';
import { Busboy, type BusboyFileStream, type BusboyInstance } from '@fastify/busboy';
import { GatewayError } from '../errors/index.js';
import { assertJsonDepth } from './json-depth.js';

// The form of `POST /v1/realtime/calls`, the Realtime WebRTC SDP exchange: `multipart/form-data`
// (RFC 7578) with the SDP offer in `sdp` and, optionally, the session (the object
// `POST /v1/realtime/client_secrets` takes, with its `model`) as JSON in `session`.
// https://platform.openai.com/docs/api-reference/realtime-calls/create-call
//
// The form is small (an offer is a few KiB), so it is read whole and parsed here, by the rules
// http/multipart-model.ts applies to `model`: `sdp` and `session` are plain fields (the official
// SDKs send them without a filename, with their own Content-Type), each at most once, in an
// identity transfer encoding, in UTF-8. Other parts are listed, not read. `encodeCallForm` writes
// the form back from what was parsed, so an upstream reads exactly the session that was checked.

const FIELDS = new Set(['sdp', 'session']);
/** A call form has two fields; more parts than this are not a client's. */
export const MAX_CALL_FORM_PARTS = 16;
// The only transfer encodings that leave a part's bytes as sent (see http/multipart-model.ts).
const IDENTITY_ENCODINGS = new Set(['7bit', '8bit', 'binary']);
// Fatal so that invalid UTF-8 is refused rather than read as U+FFFD; the BOM kept so a value
// re-encoded is the caller's bytes.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface CallForm {
  /** The SDP offer, as sent. */
  sdp: string;
  /** The `session` field parsed, when one was sent. */
  session: Record<string, unknown> | undefined;
  /** The names of the other parts (never read, and left out of `encodeCallForm`). */
  ignored: string[];
}

export interface EncodedCallForm {
  body: Buffer;
  /** `multipart/form-data` with the form's fresh boundary. */
  contentType: string;
}

const malformed = (detail: string): GatewayError => new GatewayError('invalid_request', `The multipart body is malformed: ${detail}.`);
const badField = (name: string, detail: string): GatewayError => new GatewayError('invalid_request', `The multipart "${name}" field ${detail}.`, { param: name });
const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * Parses a whole call form. Rejects with `GatewayError` `invalid_request` (a malformed form, a
 * missing or empty `sdp`, a field sent twice, as a file, encoded or not UTF-8, too many parts,
 * a `session` that is not an object) or `invalid_json` (`session` does not parse).
 */
export function parseCallForm(bytes: Buffer, contentType: string): Promise<CallForm> {
  return new Promise((resolve, reject) => {
    let parser: BusboyInstance;
    try {
      // Every part is a "file" to busboy: its raw bytes, with no charset guess, and its filename as sent.
      parser = Busboy({ headers: { 'content-type': contentType }, isPartAFile: () => true, limits: { parts: MAX_CALL_FORM_PARTS } });
    } catch (error) {
      const message = (error as Error).message;
      reject(/boundary/i.test(message) ? new GatewayError('invalid_request', 'The multipart/form-data Content-Type has no boundary parameter.') : malformed(message.replace(/\.$/, '')));
      return;
    }
    const values = new Map<string, string>();
    const seen = new Set<string>();
    const ignored: string[] = [];
    // The first problem wins; the parse runs to its end regardless (the bytes are all here).
    let failure: GatewayError | undefined;
    let settled = false;
    const fail = (error: GatewayError): void => {
      failure ??= error;
    };
    const settle = (): void => {
      if (settled) return;
      settled = true;
      if (failure !== undefined) return reject(failure);
      try {
        resolve(formOf(values, ignored));
      } catch (error) {
        reject(error);
      }
    };

    parser.on('file', (name: string | undefined, part: BusboyFileStream, filename: string | undefined, encoding: string) => {
      // A body that ends inside the part is reported here as well as on the parser; unheard, it would throw.
      part.on('error', () => fail(malformed('the body ended inside a part')));
      if (name === undefined || !FIELDS.has(name)) {
        ignored.push(name ?? '');
        part.resume();
        return;
      }
      const refuse = (detail: string): void => {
        fail(badField(name, detail));
        part.resume();
      };
      if (seen.has(name)) return refuse('appears more than once');
      seen.add(name);
      // Busboy passes a filename exactly when the part's Content-Disposition has one (even empty).
      if (filename !== undefined) return refuse(`is a file part; send it as a plain field (curl: -F "${name}=<file", not @file)`);
      if (!IDENTITY_ENCODINGS.has(encoding)) return refuse(`may not use Content-Transfer-Encoding "${encoding.slice(0, 32)}"`);
      const chunks: Buffer[] = [];
      part.on('data', (chunk: Buffer) => chunks.push(chunk));
      part.on('end', () => {
        try {
          values.set(name, utf8.decode(Buffer.concat(chunks)));
        } catch {
          fail(badField(name, 'is not valid UTF-8'));
        }
      });
    });
    parser.on('partsLimit', () => fail(malformed(`it has more than ${MAX_CALL_FORM_PARTS} parts`)));
    parser.on('error', (error: unknown) => {
      fail(malformed(error instanceof Error ? error.message.replace(/\.$/, '') : String(error)));
      settle();
    });
    parser.on('finish', settle);
    parser.end(bytes);
  });
}

function formOf(values: ReadonlyMap<string, string>, ignored: string[]): CallForm {
  const sdp = values.get('sdp');
  if (sdp === undefined || sdp.length === 0) throw new GatewayError('invalid_request', 'The multipart body has no "sdp" field: send the SDP offer in it.', { param: 'sdp' });
  const text = values.get('session');
  if (text === undefined) return { sdp, session: undefined, ignored };
  let session: unknown;
  try {
    session = JSON.parse(text);
  } catch (error) {
    throw new GatewayError('invalid_json', `The multipart "session" field is not valid JSON: ${(error as Error).message.replace(/\s+/g, ' ').slice(0, 200)}`, { param: 'session' });
  }
  assertJsonDepth(session);
  if (!isObject(session)) throw badField('session', 'must be a JSON object (the session configuration)');
  return { sdp, session, ignored };
}

/**
 * Writes a call form: `sdp`, then `session` when there is one, as the official SDK sends them
 * (plain fields with their own Content-Type), under a fresh boundary that occurs in neither.
 */
export function encodeCallForm(form: { sdp: string; session: Record<string, unknown> | undefined }): EncodedCallForm {
  const sdp = Buffer.from(form.sdp, 'utf8');
  const session = form.session === undefined ? undefined : Buffer.from(JSON.stringify(form.session), 'utf8');
  let boundary: string;
  do boundary = `openai-api-${randomBytes(16).toString('hex')}`;
  while (sdp.includes(boundary) || session?.includes(boundary) === true);
  const part = (name: string, type: string, value: Buffer): Buffer[] => [Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\nContent-Type: ${type}\r\n\r\n`), value, Buffer.from('\r\n')];
  const chunks = [...part('sdp', 'application/sdp', sdp), ...(session === undefined ? [] : part('session', 'application/json', session)), Buffer.from(`--${boundary}--\r\n`)];
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}
