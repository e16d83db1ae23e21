import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { presentedKey } from '../../../src/auth/bearer.js';

describe('the key a caller presents', () => {
  it('reads Authorization: Bearer, scheme in any case, only the prefix removed', () => {
    assert.equal(presentedKey({ authorization: 'Bearer sk-app-1' }), 'sk-app-1');
    assert.equal(presentedKey({ authorization: '  bearer   sk-app-1 ' }), 'sk-app-1');
    assert.equal(presentedKey({ authorization: 'Basic dXNlcjpwdw==' }), undefined);
  });

  it("reads api-key (Azure-style clients) and x-api-key (Anthropic's SDK and Claude Code), trimmed", () => {
    assert.equal(presentedKey({ 'api-key': ' sk-azure ' }), 'sk-azure');
    assert.equal(presentedKey({ 'x-api-key': 'sk-anthropic-client ' }), 'sk-anthropic-client');
  });

  it('prefers Authorization, then api-key, then x-api-key', () => {
    assert.equal(presentedKey({ authorization: 'Bearer from-auth', 'api-key': 'from-api-key', 'x-api-key': 'from-x-api-key' }), 'from-auth');
    assert.equal(presentedKey({ 'api-key': 'from-api-key', 'x-api-key': 'from-x-api-key' }), 'from-api-key');
    assert.equal(presentedKey({ 'api-key': '  ', 'x-api-key': 'from-x-api-key' }), 'from-x-api-key', 'a blank api-key is no key');
  });

  it('finds none in an empty or absent header, nor behind a malformed Authorization', () => {
    assert.equal(presentedKey({}), undefined);
    assert.equal(presentedKey({ 'x-api-key': '' }), undefined);
    assert.equal(presentedKey({ authorization: 'Bearer', 'x-api-key': 'sk-x' }), undefined, 'an Authorization header that says nothing is not silently replaced');
  });
});
