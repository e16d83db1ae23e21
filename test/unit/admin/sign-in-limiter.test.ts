import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cameOverHttps, clientAddress, SignInLimiter } from '../../../src/admin/sign-in-limiter.js';

describe('SignInLimiter', () => {
  it('closes an address after the limit of failures until the window from the first one ends, then opens it again', () => {
    let now = 1_000_000;
    const limiter = new SignInLimiter({ failures: 3, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 2; i++) limiter.failed('a');
    assert.equal(limiter.blockedFor('a'), 0, 'under the limit');
    now += 10_000;
    limiter.failed('a');
    assert.equal(limiter.blockedFor('a'), 50_000, 'closed until a minute after the first failure');
    assert.equal(limiter.blockedFor('b'), 0, 'another address is open');
    now += 50_000;
    assert.equal(limiter.blockedFor('a'), 0, 'open again once the window ended');
    limiter.failed('a');
    assert.equal(limiter.blockedFor('a'), 0, 'a fresh window');
  });

  it('forgets an address on success, and holds at most maxClients addresses', () => {
    const limiter = new SignInLimiter({ failures: 1, maxClients: 2 });
    limiter.failed('a');
    assert.ok(limiter.blockedFor('a') > 0);
    limiter.succeeded('a');
    assert.equal(limiter.blockedFor('a'), 0);
    for (const address of ['x', 'y', 'z']) limiter.failed(address);
    assert.equal(limiter.blockedFor('x'), 0, 'the oldest was pushed out');
    assert.ok(limiter.blockedFor('y') > 0 && limiter.blockedFor('z') > 0);
  });
});

describe('client address and https', () => {
  it('believes the forwarded headers only behind a trusted proxy, and then only their last entry', () => {
    const headers = { 'x-forwarded-for': '6.6.6.6, 203.0.113.5', 'x-forwarded-proto': 'http, https' };
    assert.equal(clientAddress(headers, '127.0.0.1', false), '127.0.0.1');
    assert.equal(clientAddress(headers, '127.0.0.1', true), '203.0.113.5');
    assert.equal(clientAddress({}, '127.0.0.1', true), '127.0.0.1', 'no header: the socket');
    assert.equal(cameOverHttps(headers, false, false), false);
    assert.equal(cameOverHttps(headers, false, true), true);
    assert.equal(cameOverHttps({ 'x-forwarded-proto': 'https, http' }, false, true), false);
    assert.equal(cameOverHttps({}, true, false), true, 'TLS on the socket');
  });
});
