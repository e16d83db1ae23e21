import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EndpointGrants } from '../../../src/auth/endpoint-grants.js';
import { keyAttributesSchema } from '../../../src/config/key-entry.js';

/** The first issue keyAttributesSchema raises for these grants, as the admin API would word it. */
function refusal(endpoints: unknown): string {
  const result = keyAttributesSchema.safeParse({ endpoints });
  assert.equal(result.success, false, `${JSON.stringify(endpoints)} was accepted`);
  const issue = result.error!.issues[0]!;
  return `${issue.path.map(String).join('.')}: ${issue.message}`;
}

describe('EndpointGrants.allows', () => {
  it('matches an exact grant on its method only', () => {
    const grants = new EndpointGrants(['POST /v1/fine_tuning/jobs']);
    assert.equal(grants.allows('POST', '/v1/fine_tuning/jobs'), true);
    for (const method of ['GET', 'PUT', 'PATCH', 'DELETE', 'post']) assert.equal(grants.allows(method, '/v1/fine_tuning/jobs'), false, method);
  });

  it('lets method * stand for every method', () => {
    const grants = new EndpointGrants(['* /v1/evals']);
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) assert.equal(grants.allows(method, '/v1/evals'), true, method);
    assert.equal(grants.allows('GET', '/v1/evals/ev_1'), false);
  });

  it('lets * in the path stand for any run of characters, / included', () => {
    const grants = new EndpointGrants(['GET /v1/models/*', '* /v1/evals*', 'DELETE /v1/fine_tuning/jobs/*/checkpoints/*']);
    assert.equal(grants.allows('GET', '/v1/models/gpt-4o'), true);
    assert.equal(grants.allows('GET', '/v1/models/ft:gpt-4o:acme/x'), true);
    assert.equal(grants.allows('GET', '/v1/models/'), true, '* may match nothing');
    assert.equal(grants.allows('GET', '/v1/models'), false);
    assert.equal(grants.allows('POST', '/v1/models/gpt-4o'), false);
    assert.equal(grants.allows('POST', '/v1/evals'), true);
    assert.equal(grants.allows('GET', '/v1/evals/ev_1/runs/run_2'), true);
    assert.equal(grants.allows('GET', '/v1/evals_archive'), true, 'a trailing * is not a segment boundary');
    assert.equal(grants.allows('DELETE', '/v1/fine_tuning/jobs/ftjob_1/checkpoints/cp_2'), true);
    assert.equal(grants.allows('DELETE', '/v1/fine_tuning/jobs/ftjob_1/events'), false);
  });

  it('matches the whole path, never a prefix, suffix or part of it', () => {
    const grants = new EndpointGrants(['GET /v1/files', 'POST /v1/batches/*/cancel']);
    assert.equal(grants.allows('GET', '/v1/files'), true);
    for (const path of ['/v1/files/file_1', '/v1/files/', '/v1/file', '/v2/v1/files', '/v1/files/file_1/content']) {
      assert.equal(grants.allows('GET', path), false, path);
    }
    assert.equal(grants.allows('POST', '/v1/batches/b_1/cancel'), true);
    assert.equal(grants.allows('POST', '/v1/batches/b_1/cancel/more'), false);
    assert.equal(grants.allows('POST', '/v1/batches/cancel'), false);
  });

  it('grants nothing without grants, and from() leaves a key without grants undefined', () => {
    assert.equal(new EndpointGrants([]).allows('GET', '/v1/files'), false);
    assert.equal(EndpointGrants.from(null), undefined);
    assert.equal(EndpointGrants.from(undefined), undefined);
    assert.equal(EndpointGrants.from([]), undefined);
    assert.deepEqual(EndpointGrants.from(['GET /v1/files'])?.grants, ['GET /v1/files']);
  });

  it('ignores a malformed grant that bypassed validation (a hand-edited database) instead of widening it', () => {
    const grants = new EndpointGrants(['GET/v1/*', 'get /v1/files', 'GET /v1/files', '* /v1/%2A']);
    assert.equal(grants.allows('GET', '/v1/files'), true);
    assert.equal(grants.allows('GET', '/v1/models'), false);
    assert.equal(grants.allows('GET', '/v1/%2A'), false);
  });

  it('stays linear on a long path against many stars', () => {
    const grants = new EndpointGrants(['GET /v1/*a*a*a*a*a*a*a*a*b']);
    const path = `/v1/${'a'.repeat(200_000)}`;
    const started = performance.now();
    assert.equal(grants.allows('GET', path), false);
    assert.ok(performance.now() - started < 200, 'matching took too long');
  });
});

describe('endpoint grants in keyAttributesSchema', () => {
  it('accepts the documented forms', () => {
    const endpoints = ['POST /v1/fine_tuning/jobs', '* /v1/evals*', 'GET /v1/models/*', 'DELETE /v1/files/*', 'PUT /v1/x', 'PATCH /v1/y', 'GET /v1/'];
    assert.deepEqual(keyAttributesSchema.parse({ endpoints }).endpoints, endpoints);
    assert.deepEqual(keyAttributesSchema.parse({ endpoints: [] }).endpoints, []);
  });

  it('refuses malformed grants with one line naming the grant and what is wrong', () => {
    const cases: Array<[unknown, RegExp]> = [
      [['POST/v1/files'], /^endpoints\.0: expected a method, one space and a path, e.g\. "POST \/v1\/fine_tuning\/jobs"$/],
      [['GET /v1/files', 'post /v1/files'], /^endpoints\.1: method "post" is not one of GET, POST, PUT, PATCH, DELETE or \*$/],
      [['HEAD /v1/files'], /method "HEAD" is not one of/],
      [['POST  /v1/files'], /more than one space between the method and the path/],
      [['GET /v2/files'], /path "\/v2\/files" does not start with \/v1\//],
      [['GET /v1'], /path "\/v1" does not start with \/v1\//],
      [['GET v1/files'], /does not start with \/v1\//],
      [['GET /v1/files ', 'x'], /path "\/v1\/files " contains a space/],
      [['GET /v1/files?purpose=batch'], /contains "\?": a path is printable ASCII without spaces/],
      [['GET /v1/files#x'], /contains "#"/],
      [['GET /v1/%66iles'], /contains "%"/],
      [['GET /v1/files\\x'], /contains "\\\\"/],
      [['GET /v1/fil\u00e9s'], /contains "é"/],
      [['GET /v1/files\tx'], /contains "\\t"/],
      [['GET /v1/files/../models'], /contains "\.\.": dot segments are not allowed/],
      [['GET /v1//files'], /contains "\/\/", which never matches/],
      [[`GET /v1/${'a'.repeat(260)}`], /^endpoints\.0: longer than 256 characters$/],
      [Array.from({ length: 65 }, (_, i) => `GET /v1/x${i}`), /^endpoints: more than 64 grants$/],
      [['GET /v1/files', 7], /^endpoints\.1: /],
      ['GET /v1/files', /^endpoints: /],
    ];
    for (const [endpoints, pattern] of cases) {
      const message = refusal(endpoints);
      assert.match(message, pattern);
      assert.equal(message.split('\n').length, 1, message);
    }
  });

  it('accepts exactly 64 grants of exactly 256 characters', () => {
    const grant = (i: number) => `GET /v1/${String(i).padStart(2, '0')}`.padEnd(256, 'x');
    const endpoints = Array.from({ length: 64 }, (_, i) => grant(i));
    assert.equal(keyAttributesSchema.parse({ endpoints }).endpoints?.length, 64);
  });
});
