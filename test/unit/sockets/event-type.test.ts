import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { leadingType, parseEvent } from '../../../src/sockets/event-type.js';
import { sendableCode } from '../../../src/sockets/socket-relay.js';

describe('leadingType', () => {
  it('reads the type an OpenAI event starts with, whitespace allowed', () => {
    assert.equal(leadingType(Buffer.from('{"type":"response.output_text.delta","delta":"hi"}')), 'response.output_text.delta');
    assert.equal(leadingType(Buffer.from(' { "type" : "response.completed", "response": {}}')), 'response.completed');
  });

  it('gives up (the caller parses) when the type is not first, not a plain name, or too far in', () => {
    assert.equal(leadingType(Buffer.from('{"sequence_number":1,"type":"response.completed"}')), undefined);
    assert.equal(leadingType(Buffer.from('{"type":"resp\\u006fnse.completed"}')), undefined);
    assert.equal(leadingType(Buffer.from(`{${' '.repeat(100)}"type":"error"}`)), undefined);
    assert.equal(leadingType(Buffer.from('not json')), undefined);
  });
});

describe('parseEvent', () => {
  it('returns objects only', () => {
    assert.deepEqual(parseEvent('{"type":"x"}'), { type: 'x' });
    for (const text of ['[1]', '"x"', 'null', '{bad']) assert.equal(parseEvent(text), undefined, text);
  });
});

describe('sendableCode', () => {
  it('allows the codes a close frame may carry and refuses the ones that only describe a close', () => {
    for (const code of [1000, 1001, 1003, 1007, 1008, 1011, 1014, 3000, 4000, 4999]) assert.equal(sendableCode(code), true, String(code));
    for (const code of [999, 1004, 1005, 1006, 1015, 2000, 5000]) assert.equal(sendableCode(code), false, String(code));
  });
});
