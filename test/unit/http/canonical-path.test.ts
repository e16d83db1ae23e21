import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { GatewayError } from '../../../src/errors/index.js';
import { canonicalPath, splitSegments } from '../../../src/http/canonical-path.js';

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** Everything a canonical path promises, as one list of broken promises (empty when it holds). */
function violations(path: string): string[] {
  const found: string[] = [];
  if (!path.startsWith('/')) found.push('does not start with "/"');
  if (path.includes('//')) found.push('contains "//"');
  if (path !== '/' && path.endsWith('/')) found.push('ends with "/"');
  if (path.includes('\\')) found.push('contains "\\"');
  if (/%2f|%5c/i.test(path)) found.push('contains an encoded "/" or "\\"');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(path)) found.push('contains a control character');
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) found.push('has a dot segment');
  for (let at = path.indexOf('%'); at !== -1; at = path.indexOf('%', at + 1)) {
    const escape = path.slice(at, at + 3);
    if (!/^%[0-9A-F]{2}$/.test(escape)) found.push(`has a non-canonical escape ${JSON.stringify(escape)}`);
    else if (UNRESERVED.test(String.fromCharCode(Number.parseInt(escape.slice(1), 16)))) found.push(`keeps ${escape} encoded`);
    else if (Number.parseInt(escape.slice(1), 16) < 0x20 || escape === '%7F') found.push(`keeps control escape ${escape}`);
  }
  return found;
}

function refusal(target: string): GatewayError {
  try {
    canonicalPath(target);
  } catch (error) {
    assert.ok(error instanceof GatewayError, `expected a GatewayError for ${JSON.stringify(target)}, got ${String(error)}`);
    assert.equal(error.code, 'invalid_request');
    return error;
  }
  assert.fail(`expected ${JSON.stringify(target)} to be refused`);
}

describe('canonicalPath: the attacks of issue 10', () => {
  it('collapses a doubled slash so /v1//chat/completions is chat completions', () => {
    assert.deepEqual(canonicalPath('/v1//chat/completions'), { path: '/v1/chat/completions', query: '' });
    assert.equal(canonicalPath('//v1///chat////completions').path, '/v1/chat/completions');
  });

  it('decodes percent-encoded unreserved characters so %63ompletions is completions', () => {
    assert.equal(canonicalPath('/v1/chat/%63ompletions').path, '/v1/chat/completions');
    assert.equal(canonicalPath('/%76%31/%63%68%61%74/%43OMPLETIONS').path, '/v1/chat/COMPLETIONS');
  });

  it('forwards the decoded /%761/files as /v1/files, never the raw /v161/files', () => {
    assert.equal(canonicalPath('/%761/files').path, '/v1/files');
  });
});

describe('canonicalPath: normal form', () => {
  it('leaves an already canonical path alone', () => {
    for (const path of ['/', '/v1/models', '/v1/files/file-abc/content', '/v1/responses/resp_1', '/v1/a~b_c-d.e', '/v1/...']) {
      assert.deepEqual(canonicalPath(path), { path, query: '' });
    }
  });

  it('drops one trailing slash but keeps the root', () => {
    assert.equal(canonicalPath('/v1/files/').path, '/v1/files');
    assert.equal(canonicalPath('/v1/files//').path, '/v1/files');
    assert.equal(canonicalPath('/').path, '/');
    assert.equal(canonicalPath('//').path, '/');
    assert.equal(canonicalPath('').path, '/');
  });

  it('upper-cases the hex of escapes it keeps and decodes only unreserved ones', () => {
    assert.equal(canonicalPath('/v1/a%3ab').path, '/v1/a%3Ab');
    assert.equal(canonicalPath('/v1/%7e%2D%2e%5F').path, '/v1/~-._');
    assert.equal(canonicalPath('/v1/%e2%82%ac').path, '/v1/%E2%82%AC');
    // `%25` is a literal "%": decoding it would turn `%2541` into a second escape.
    assert.equal(canonicalPath('/v1/%2541').path, '/v1/%2541');
    assert.equal(canonicalPath('/v1/a%20b%3F%23').path, '/v1/a%20b%3F%23');
  });

  it('returns the query raw, escapes and dots included', () => {
    assert.deepEqual(canonicalPath('/v1//files/?purpose=%2fx%2F&after=..&limit=%7e'), {
      path: '/v1/files',
      query: '?purpose=%2fx%2F&after=..&limit=%7e',
    });
    assert.deepEqual(canonicalPath('/v1/files?'), { path: '/v1/files', query: '?' });
    assert.deepEqual(canonicalPath('/v1/files?a=1?b=2'), { path: '/v1/files', query: '?a=1?b=2' });
  });

  it('does not judge the query: what is refused in a path passes there', () => {
    assert.equal(canonicalPath('/v1/files?x=%zz&y=\\').query, '?x=%zz&y=\\');
  });

  it('drops a fragment, after or before a query', () => {
    assert.deepEqual(canonicalPath('/v1/files?a=1#frag'), { path: '/v1/files', query: '?a=1' });
    assert.deepEqual(canonicalPath('/v1/files#frag?a=1'), { path: '/v1/files', query: '' });
    assert.deepEqual(canonicalPath('/v1/files#%2F'), { path: '/v1/files', query: '' });
  });

  it('takes the path of an absolute-form target and never its host', () => {
    assert.deepEqual(canonicalPath('http://evil.example/v1//files?limit=2'), { path: '/v1/files', query: '?limit=2' });
    assert.deepEqual(canonicalPath('HTTPS://user@evil.example:8443/%761/models'), { path: '/v1/models', query: '' });
    assert.deepEqual(canonicalPath('http://evil.example?x=1'), { path: '/', query: '?x=1' });
    assert.deepEqual(canonicalPath('http://evil.example'), { path: '/', query: '' });
  });
});

describe('canonicalPath: refusals', () => {
  it('refuses an encoded slash in either case', () => {
    for (const target of ['/v1/files%2Ffile-abc', '/v1/files%2ffile-abc', '/v1%2F..%2Fadmin']) {
      assert.match(refusal(target).message, /encoded "\/" \(%2F\)/);
    }
  });

  it('refuses a backslash, raw or encoded', () => {
    assert.match(refusal('/v1/files\\..\\admin').message, /may not contain "\\"/);
    assert.match(refusal('/v1/files%5c..').message, /encoded "\\" \(%5C\)/);
    assert.match(refusal('/v1/files%5C..').message, /encoded "\\" \(%5C\)/);
  });

  it('refuses dot segments, raw or encoded in any case', () => {
    for (const target of ['/v1/./files', '/v1/../admin', '/v1/%2e%2E/admin', '/v1/%2E/files', '/v1/.%2e', '/..', '/v1/files/.', '/v1//..//x', 'http://h/v1/../x']) {
      assert.match(refusal(target).message, /"\." or "\.\." segments/, target);
    }
  });

  it('refuses control characters and NUL, raw or encoded', () => {
    for (const target of ['/v1/files\x00', '/v1/fi\x1fles', '/v1/files\x7f', '/v1/%00', '/v1/a%0a', '/v1/a%0D%0Ab', '/v1/%1f', '/v1/%7f', '/v1/%7F']) {
      assert.match(refusal(target).message, /control characters/, JSON.stringify(target));
    }
  });

  it('refuses an invalid escape and names it', () => {
    assert.match(refusal('/v1/%zz').message, /invalid percent-escape "%zz"/);
    assert.match(refusal('/v1/%4').message, /invalid percent-escape "%4"/);
    assert.match(refusal('/v1/%').message, /invalid percent-escape "%"/);
    assert.match(refusal('/v1/%4g/x').message, /invalid percent-escape "%4g"/);
    assert.match(refusal('/v1/%%41').message, /invalid percent-escape "%%4"/);
  });

  it('answers 400 in the OpenAI error shape', () => {
    const error = refusal('/v1//%2e%2e/files');
    assert.equal(error.status, 400);
    assert.equal(error.type, 'invalid_request_error');
  });
});

describe('splitSegments', () => {
  it('returns the non-empty segments', () => {
    assert.deepEqual(splitSegments('/v1/files/file-abc/content'), ['v1', 'files', 'file-abc', 'content']);
    assert.deepEqual(splitSegments('//v1//files/'), ['v1', 'files']);
    assert.deepEqual(splitSegments('/'), []);
  });
});

// Property tests: any spelling of a known path is that path, and what comes out is canonical.

const SEGMENTS = ['v1', 'chat', 'completions', 'files', 'file-abc', 'responses', 'resp_68a1', 'audio', 'transcriptions', 'embeddings', 'models', 'gpt-4o-mini', 'content', 'vector_stores', 'a.b~c'];

const encodeChar = (char: string, upper: boolean): string => {
  const hex = char.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${upper ? hex.toUpperCase() : hex.toLowerCase()}`;
};

/** A plain path and one of its many spellings. */
const spelledPath = fc
  .array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 6 })
  .chain((segments) => {
    const plain = `/${segments.join('/')}`;
    const chars = [...plain];
    return fc
      .record({
        // Per character: 0 keep, 1 lower-hex escape, 2 upper-hex escape (a slash may only be repeated).
        spelling: fc.array(fc.nat({ max: 2 }), { minLength: chars.length, maxLength: chars.length }),
        slashes: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: chars.length, maxLength: chars.length }),
        trailing: fc.boolean(),
      })
      .map(({ spelling, slashes, trailing }) => {
        const spelled = chars
          .map((char, i) => (char === '/' ? '/'.repeat(slashes[i]!) : spelling[i] === 0 ? char : encodeChar(char, spelling[i] === 2)))
          .join('');
        return { plain, spelled: trailing ? `${spelled}/` : spelled };
      });
  });

// Pieces chosen to hit every rule, glued at random: most results are refused, many are not.
const PIECES = ['/', '//', '.', '..', '...', '%2e', '%2E', '%2f', '%2F', '%5c', '%5C', '\\', '%00', '%1f', '%7f', '%7F', '\x00', '\x1b', '%41', '%61', '%7e', '%3a', '%3A', '%e2%82%ac', '%25', '%zz', '%4', '%', 'a', 'v1', 'chat', 'é', ' ', '?', '#', '~', '-', '_', '=', '&'];
const gluedTarget = fc.array(fc.constantFrom(...PIECES), { maxLength: 16 }).map((pieces) => pieces.join(''));
const anyTarget = fc.oneof(gluedTarget, fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `/v1/${s}`));

/** The canonical target, or undefined when refused the one allowed way. */
function attempt(target: string): { path: string; query: string } | undefined {
  try {
    return canonicalPath(target);
  } catch (error) {
    assert.ok(error instanceof GatewayError && error.code === 'invalid_request', `unexpected ${String(error)} for ${JSON.stringify(target)}`);
    return undefined;
  }
}

describe('canonicalPath properties', () => {
  it('maps every spelling of a known path (escapes in any case, repeated slashes) to the plain path', () => {
    fc.assert(
      fc.property(spelledPath, ({ plain, spelled }) => {
        assert.deepEqual(canonicalPath(spelled), { path: plain, query: '' });
        assert.deepEqual(canonicalPath(`${spelled}?after=file-abc`), { path: plain, query: '?after=file-abc' });
      }),
      { numRuns: 500 },
    );
  });

  it('is idempotent: the canonical form of a canonical path is itself', () => {
    fc.assert(
      fc.property(fc.oneof(anyTarget, spelledPath.map(({ spelled }) => spelled)), (target) => {
        const once = attempt(target);
        if (once === undefined) return;
        assert.deepEqual(canonicalPath(once.path + once.query), once);
      }),
      { numRuns: 2000 },
    );
  });

  it('never returns "//", a dot segment, an encoded or raw slash/backslash, a control character or a lower-case escape', () => {
    fc.assert(
      fc.property(anyTarget, (target) => {
        const result = attempt(target);
        if (result !== undefined) assert.deepEqual(violations(result.path), [], `${JSON.stringify(target)} → ${JSON.stringify(result.path)}`);
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses only with invalid_request, and every refused target really breaks a rule', () => {
    // A refusal is justified by something in the raw path: a backslash, a control character,
    // an escape that is invalid or names "/", "\" or a control character, or a dot segment after decoding.
    const justified = (target: string): boolean => {
      const path = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split('#')[0]!.split('?')[0]!;
      // eslint-disable-next-line no-control-regex
      if (/[\\\x00-\x1f\x7f]/.test(path)) return true;
      if (/%(?![0-9a-f]{2})|%(?:2f|5c|[01][0-9a-f]|7f)/i.test(path)) return true;
      const decoded = path.replace(/%2e/gi, '.');
      return decoded.split('/').some((segment) => segment === '.' || segment === '..');
    };
    fc.assert(
      fc.property(anyTarget, (target) => {
        if (attempt(target) === undefined) assert.ok(justified(target), `refused without reason: ${JSON.stringify(target)}`);
      }),
      { numRuns: 3000 },
    );
  });
});
