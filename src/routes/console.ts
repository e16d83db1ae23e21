import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { SessionAnswer } from '../admin/console-types.js';
import { fromSameOrigin, sessionCookie, type ConsoleSessions } from '../admin/session.js';
import { cameOverHttps, clientAddress, SignInLimiter } from '../admin/sign-in-limiter.js';
import { AccessTokens } from '../auth/access-tokens.js';
import { GatewayError } from '../errors/index.js';
import { validateBody } from '../http/validate.js';
import { assertConsoleChange } from './admin.js';

/**
 * Where `npm run build` writes the console's bundle (scripts/build.mjs): dist/console/ beside
 * the compiled server — the same directory from src/routes/ (tsx) and dist/routes/ (installed).
 */
const BUNDLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** No inline script or style, nothing from another origin, never framed. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  body: Buffer;
  type: string;
}

/** The bundle's files, read once; asset names carry a content hash (so they are cached for good). */
function loadBundle(dir: string): Map<string, Asset> | undefined {
  if (!existsSync(join(dir, 'index.html'))) return undefined;
  const files = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[extname(name)];
    if (type !== undefined) files.set(name, { body: readFileSync(join(dir, name)), type });
  }
  return files;
}

const signInBody = z.object({ token: z.string().min(1).max(4096) }).strict();

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cross-origin-resource-policy', 'same-origin');
}

/**
 * The admin web console on the admin listener: its page at `/`, its bundle under `/console/`,
 * and its session at `/console/session` (sign in with the admin token → an HttpOnly,
 * SameSite=Strict cookie; the page then calls the admin API with it, see routes/admin.ts).
 */
export function consoleRoutes(
  app: FastifyInstance,
  deps: {
    token: string;
    sessions: ConsoleSessions;
    bundleDir?: string;
    /** `trust_proxy`, read per request so a reload applies it. */
    trustProxy?: () => boolean;
    signIns?: SignInLimiter;
  },
): void {
  const token = new AccessTokens([deps.token]);
  const signIns = deps.signIns ?? new SignInLimiter();
  const trustProxy = deps.trustProxy ?? (() => false);
  const secure = (request: FastifyRequest): boolean => cameOverHttps(request.headers, (request.socket as { encrypted?: boolean }).encrypted === true, trustProxy());
  const bundle = loadBundle(deps.bundleDir ?? BUNDLE_DIR);
  const open = { config: { adminPublic: true } };

  app.get('/', open, async (_request, reply) => {
    securityHeaders(reply).header('cache-control', 'no-cache');
    const page = bundle?.get('index.html');
    if (page === undefined) return reply.code(503).type('text/plain; charset=utf-8').send('The console is not built: run "npm run build".\n');
    return reply.type(page.type).send(page.body);
  });

  app.get<{ Params: { file: string } }>('/console/:file', open, async (request, reply) => {
    const asset = request.params.file === 'index.html' ? undefined : bundle?.get(request.params.file);
    if (asset === undefined) throw new GatewayError('not_found', 'No such console file.');
    return securityHeaders(reply).header('cache-control', 'public, max-age=31536000, immutable').type(asset.type).send(asset.body);
  });

  const session = (reply: FastifyReply, csrfToken: string, expiresAt: number): SessionAnswer => {
    reply.header('cache-control', 'no-store');
    return { csrf_token: csrfToken, expires_at: new Date(expiresAt).toISOString() };
  };

  app.post('/console/session', open, async (request, reply) => {
    // Also guards sign-in itself: another site must not sign a browser in to a session it chose.
    if (!fromSameOrigin(request.headers)) throw new GatewayError('csrf_refused', 'Cross-site request refused.');
    const body = validateBody(signInBody, request.body);
    const address = clientAddress(request.headers, request.socket.remoteAddress, trustProxy());
    const waitMs = signIns.blockedFor(address);
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      throw new GatewayError('too_many_sign_ins', `Too many wrong admin tokens from this address; try again in ${seconds} s.`, { headers: { 'retry-after': String(seconds) } });
    }
    if (token.match(body.token) < 0) {
      signIns.failed(address);
      throw new GatewayError('invalid_api_key', 'Invalid admin token.');
    }
    signIns.succeeded(address);
    const created = deps.sessions.create();
    reply.header('set-cookie', sessionCookie(created.id, Math.floor(deps.sessions.ttlMs / 1000), secure(request)));
    return session(reply, created.session.csrfToken, created.session.expiresAt);
  });

  app.get('/console/session', open, async (request, reply) => {
    const current = deps.sessions.fromHeaders(request.headers);
    if (current === undefined) throw new GatewayError('missing_api_key', 'Not signed in.');
    return session(reply, current.csrfToken, current.expiresAt);
  });

  app.delete('/console/session', open, async (request, reply) => {
    const current = deps.sessions.fromHeaders(request.headers);
    if (current !== undefined) {
      assertConsoleChange(request.headers, current);
      deps.sessions.end(request.headers);
    }
    return reply.header('set-cookie', sessionCookie('', 0, secure(request))).code(204).send();
  });
}
