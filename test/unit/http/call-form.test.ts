import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { GatewayError } from '../../../src/errors/index.js';
import { encodeCallForm, MAX_CALL_FORM_PARTS, parseCallForm } from '../../../src/http/call-form.js';

const OFFER = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n';
const SESSION = { type: 'realtime', model: 'gpt-realtime', instructions: 'Speak like a pirate. 用中文回答。' };

interface Form {
  bytes: Buffer;
  contentType: string;
}

/** What a browser or SDK sends (undici's FormData encoder). */
async function multipart(build: (form: FormData) => void): Promise<Form> {
  const form = new FormData();
  build(form);
  const response = new Response(form);
  return { bytes: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type')! };
}

/** A hand-written form, for what FormData cannot express. */
function rawForm(parts: string[], boundary = 'b0undary'): Form {
  const body = parts.map((part) => `--${boundary}\r\n${part}\r\n`).join('') + `--${boundary}--\r\n`;
  return { bytes: Buffer.from(body, 'utf8'), contentType: `multipart/form-data; boundary=${boundary}` };
}

const field = (name: string, value: string, headers = ''): string => `Content-Disposition: form-data; name="${name}"\r\n${headers}\r\n${value}`;

async function refused(form: Form, code: string, message: RegExp): Promise<void> {
  await assert.rejects(parseCallForm(form.bytes, form.contentType), (error: unknown) => {
    assert.ok(error instanceof GatewayError, String(error));
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
}

/** undici's own multipart reader, independent of busboy: what an upstream would read. */
async function readByUndici(encoded: { body: Buffer; contentType: string }): Promise<FormData> {
  return new Response(encoded.body, { headers: { 'content-type': encoded.contentType } }).formData();
}

describe('call form', () => {
  it('reads the form the official SDK sends: plain parts with their own Content-Type', async () => {
    // openai-node's realtime.calls.create: filename-less parts typed application/sdp and application/json.
    const form = await multipart((data) => {
      data.append('sdp', new Blob([OFFER], { type: 'application/sdp' }), '');
      data.append('session', new Blob([JSON.stringify(SESSION)], { type: 'application/json' }), '');
    });
    assert.doesNotMatch(form.bytes.toString('utf8'), /filename/);
    assert.deepEqual(await parseCallForm(form.bytes, form.contentType), { sdp: OFFER, session: SESSION, ignored: [] });
  });

  it('reads string fields (a browser FormData), session optional, other parts listed and not read', async () => {
    const form = await multipart((data) => {
      data.append('model', 'gpt-4o');
      data.append('sdp', OFFER);
    });
    assert.deepEqual(await parseCallForm(form.bytes, form.contentType), { sdp: OFFER, session: undefined, ignored: ['model'] });
  });

  it('keeps a value whatever sits at its edges: CRLFs, dashes, a boundary look-alike, a BOM', async () => {
    const sdp = `\uFEFF\r\n--b0undary\r\n${OFFER}--\r\n`;
    const form = await multipart((data) => data.append('sdp', sdp));
    assert.equal((await parseCallForm(form.bytes, form.contentType)).sdp, sdp);
  });

  it('refuses a field sent twice, wherever the second one is', async () => {
    const session = field('session', JSON.stringify(SESSION));
    await refused(rawForm([field('sdp', OFFER), session, session]), 'invalid_request', /"session" field appears more than once/);
    await refused(rawForm([field('sdp', OFFER), session, field('sdp', OFFER)]), 'invalid_request', /"sdp" field appears more than once/);
    await refused(rawForm([field('sdp', OFFER), field('sdp', '')]), 'invalid_request', /"sdp" field appears more than once/);
  });

  it('refuses sdp or session as a file part, even with an empty filename', async () => {
    await refused(rawForm([field('sdp', OFFER), `Content-Disposition: form-data; name="session"; filename="session.json"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(SESSION)}`]), 'invalid_request', /"session" field is a file part/);
    await refused(rawForm([`Content-Disposition: form-data; name="sdp"; filename=""\r\n\r\n${OFFER}`]), 'invalid_request', /"sdp" field is a file part/);
  });

  it('refuses a transfer encoding that would change the bytes, and accepts the identity ones', async () => {
    const encoded = Buffer.from(JSON.stringify(SESSION)).toString('base64');
    await refused(rawForm([field('sdp', OFFER), field('session', encoded, 'Content-Transfer-Encoding: base64\r\n')]), 'invalid_request', /"session" field may not use Content-Transfer-Encoding "base64"/);
    const binary = rawForm([field('sdp', OFFER, 'Content-Transfer-Encoding: binary\r\n'), field('session', JSON.stringify(SESSION), 'Content-Transfer-Encoding: 8bit\r\n')]);
    assert.deepEqual((await parseCallForm(binary.bytes, binary.contentType)).session, SESSION);
  });

  it('refuses a session that is not a JSON object', async () => {
    await refused(rawForm([field('sdp', OFFER), field('session', '{"model": "gpt-realtime"')]), 'invalid_json', /"session" field is not valid JSON/);
    await refused(rawForm([field('sdp', OFFER), field('session', '["gpt-realtime"]')]), 'invalid_request', /"session" field must be a JSON object/);
    await refused(rawForm([field('sdp', OFFER), field('session', `${'['.repeat(300)}${']'.repeat(300)}`)]), 'invalid_json', /deeper than/);
  });

  it('refuses a form without an offer, invalid UTF-8, too many parts, and malformed forms', async () => {
    await refused(rawForm([field('session', JSON.stringify(SESSION))]), 'invalid_request', /no "sdp" field/);
    await refused(rawForm([field('sdp', '')]), 'invalid_request', /no "sdp" field/);
    // "é" in Latin-1: one byte that is no UTF-8.
    const latin1 = { bytes: Buffer.from('--b0undary\r\nContent-Disposition: form-data; name="sdp"\r\n\r\ns=caf\xe9\r\n--b0undary--\r\n', 'latin1'), contentType: 'multipart/form-data; boundary=b0undary' };
    await refused(latin1, 'invalid_request', /"sdp" field is not valid UTF-8/);
    const many = Array.from({ length: MAX_CALL_FORM_PARTS }, (_, i) => field(`x${i}`, 'x'));
    await refused(rawForm([field('sdp', OFFER), ...many]), 'invalid_request', new RegExp(`more than ${MAX_CALL_FORM_PARTS} parts`));
    const cut = rawForm([field('sdp', OFFER), field('session', JSON.stringify(SESSION))]);
    await refused({ bytes: cut.bytes.subarray(0, cut.bytes.length - 30), contentType: cut.contentType }, 'invalid_request', /malformed/);
    await refused({ bytes: cut.bytes, contentType: 'multipart/form-data' }, 'invalid_request', /no boundary/);
  });

  it('encodes a form every reader reads back as the same sdp and session, nothing else', async () => {
    const text = fc.string({ unit: fc.constantFrom('a', 'Z', '-', '\r', '\n', '\r\n', '--', '"', '中', '\u{1F600}', ' ', '='), maxLength: 40 });
    const session = fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null)), { maxKeys: 4, noNullPrototype: true }), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(text.filter((sdp) => sdp.length > 0), session, async (sdp, session) => {
        const encoded = encodeCallForm({ sdp, session });
        assert.match(encoded.contentType, /^multipart\/form-data; boundary=openai-api-[0-9a-f]{32}$/);
        const parsed = await parseCallForm(encoded.body, encoded.contentType);
        assert.deepEqual(parsed, { sdp, session: session === undefined ? undefined : JSON.parse(JSON.stringify(session)), ignored: [] });
        const other = await readByUndici(encoded);
        assert.deepEqual([...other.keys()], session === undefined ? ['sdp'] : ['sdp', 'session']);
        assert.equal(other.get('sdp'), sdp);
        if (session !== undefined) assert.deepEqual(JSON.parse(other.get('session') as string), session);
      }),
      { numRuns: 300 },
    );
  });

  it('re-encodes a parsed form under a boundary of its own, dropping the parts it did not read', async () => {
    const form = rawForm([field('model', 'gpt-4o'), field('sdp', OFFER), field('session', JSON.stringify(SESSION))], 'openai-api-0');
    const parsed = await parseCallForm(form.bytes, form.contentType);
    const encoded = encodeCallForm(parsed);
    assert.ok(!encoded.contentType.endsWith('openai-api-0'));
    assert.equal(encoded.body.toString('utf8').includes('name="model"'), false);
    assert.deepEqual(await parseCallForm(encoded.body, encoded.contentType), { sdp: OFFER, session: SESSION, ignored: [] });
  });
});
