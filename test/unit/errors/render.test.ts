import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError, envelopeErrorBody, envelopeSseErrorEvent, openAiErrorBody, sseErrorEvent, sseErrorFrame } from '../../../src/errors/index.js';
import { SseDecoder } from '../../../src/streaming/sse-decoder.js';

const refused = new GatewayError('model_not_allowed', 'Key "ci" may not use model "o3" — "quoted"\nand a new line.', { param: 'model' });

/** The events a client's SSE parser sees in `bytes`. */
function events(bytes: Buffer): Array<{ event: string | undefined; data: string }> {
  const decoder = new SseDecoder();
  return [...decoder.push(bytes), ...decoder.end()].map((event) => ({ event: event.event, data: event.data }));
}

describe('error rendering', () => {
  it('renders OpenAI\'s error object with all four fields, param null when there is none', () => {
    assert.deepEqual(JSON.parse(openAiErrorBody(refused)), { error: { message: refused.message, type: 'invalid_request_error', param: 'model', code: 'model_not_allowed' } });
    assert.deepEqual(JSON.parse(openAiErrorBody(new GatewayError('not_found', 'No key named "x".'))).error.param, null);
  });

  it('renders the seed envelope with the status inside', () => {
    assert.deepEqual(JSON.parse(envelopeErrorBody(refused)), { code: 403, data: null, msg: refused.message });
  });

  it('frames a stream error as one unnamed data event carrying the OpenAI error object', () => {
    const frame = sseErrorEvent(refused);
    assert.ok(frame.toString().endsWith('\n\n'));
    assert.deepEqual(events(frame), [{ event: undefined, data: openAiErrorBody(refused) }]);
  });

  it('frames a seed stream error as an `error` event carrying the envelope', () => {
    const frame = envelopeSseErrorEvent(new GatewayError('upstream_error', 'Upstream "fake" ended the stream before it was complete.'));
    assert.equal(frame.toString(), 'event: error\ndata: {"code":502,"data":null,"msg":"Upstream \\"fake\\" ended the stream before it was complete."}\n\n');
  });

  it('chooses the frame by the route\'s error format', () => {
    assert.deepEqual(sseErrorFrame('openai', refused), sseErrorEvent(refused));
    assert.deepEqual(sseErrorFrame('envelope', refused), envelopeSseErrorEvent(refused));
  });
});
