import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requestIdFor } from '../../../src/http/request-id.js';

const request = (headers: Record<string, string | string[]> = {}) => ({ headers }) as unknown as IncomingMessage;
/** What a minted id looks like: log-safe characters only, and short. */
const MINTED = /^req_[A-Za-z0-9_-]{11}[0-9a-z]{1,11}$/;

describe('request ids', () => {
  it('mints distinct, log-safe ids that the gateway would itself accept back as x-request-id', () => {
    const ids = Array.from({ length: 100_000 }, () => requestIdFor(request()));
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) {
      assert.match(id, MINTED);
      assert.equal(requestIdFor(request({ 'x-request-id': id })), id);
    }
  });

  it('mints ids that differ between processes started at the same moment', () => {
    const module = fileURLToPath(new URL('../../../src/http/request-id.ts', import.meta.url));
    const script = `import(${JSON.stringify(module)}).then((m) => console.log(m.requestIdFor({ headers: {} })))`;
    const mint = () => execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' }).trim();
    const [a, b] = [mint(), mint()];
    assert.match(a, MINTED);
    assert.match(b, MINTED);
    assert.notEqual(a, b, 'the first id of two processes is not the same');
  });

  it('keeps a plain incoming x-request-id and replaces anything else', () => {
    for (const kept of ['abc', 'trace-1.2:3_4', 'x'.repeat(128)]) assert.equal(requestIdFor(request({ 'x-request-id': kept })), kept);
    for (const replaced of ['', 'x'.repeat(129), 'has space', 'new\nline', 'quote"', 'ünï', '{"json":1}']) {
      assert.match(requestIdFor(request({ 'x-request-id': replaced })), MINTED, JSON.stringify(replaced));
    }
    assert.match(requestIdFor(request({ 'x-request-id': ['a', 'b'] })), MINTED, 'a repeated header is not trusted');
  });
});
