import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** The console's cookie: HttpOnly (no script reads it), SameSite=Strict (no other site sends it). */
export const SESSION_COOKIE = 'openai_api_console';
/** The header the console's page sets on every state-changing call, from the session it signed in to. */
export const CSRF_HEADER = 'x-csrf-token';

const DEFAULT_TTL_MS = 12 * 60 * 60 * 1000;
/** Sign-ins beyond this push out the oldest session, so a flood of sign-ins cannot grow memory. */
const DEFAULT_MAX_SESSIONS = 256;

export interface ConsoleSession {
  csrfToken: string;
  expiresAt: number;
}

const digest = (value: string): string => createHash('sha256').update(value, 'utf8').digest('hex');

/**
 * Console sign-ins, in memory (a restart signs everyone out). The map is keyed by the SHA-256 of
 * the cookie's random id, so the map lookup's timing says nothing about the ids it holds.
 */
export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();
  readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(options: { ttlMs?: number; max?: number; now?: () => number } = {}) {
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    this.max = options.max ?? DEFAULT_MAX_SESSIONS;
    this.now = options.now ?? Date.now;
  }

  create(): { id: string; session: ConsoleSession } {
    const now = this.now();
    for (const [key, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(key);
    while (this.sessions.size >= this.max) this.sessions.delete(this.sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const session = { csrfToken: randomBytes(32).toString('base64url'), expiresAt: now + this.ttlMs };
    this.sessions.set(digest(id), session);
    return { id, session };
  }

  /** The live session the request's cookie names, if any. */
  fromHeaders(headers: IncomingHttpHeaders): ConsoleSession | undefined {
    const id = cookieValue(headers.cookie, SESSION_COOKIE);
    if (id === undefined) return undefined;
    const key = digest(id);
    const session = this.sessions.get(key);
    if (session === undefined) return undefined;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(key);
      return undefined;
    }
    return session;
  }

  /** Ends the session the request's cookie names. */
  end(headers: IncomingHttpHeaders): void {
    const id = cookieValue(headers.cookie, SESSION_COOKIE);
    if (id !== undefined) this.sessions.delete(digest(id));
  }
}

/** The Set-Cookie value that starts (maxAgeSeconds > 0) or clears (0) the console's session. */
export function sessionCookie(id: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

/**
 * Whether a request comes from a page of the console's own origin: `Sec-Fetch-Site` (sent by
 * every current browser) must say same-origin when present, and `Origin` must name this host.
 * A request with neither is refused: browsers send Origin on every state-changing fetch.
 * https://fetch.spec.whatwg.org/#origin-header, https://w3c.github.io/webappsec-fetch-metadata/
 */
export function fromSameOrigin(headers: IncomingHttpHeaders): boolean {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = headers.origin;
  if (origin === undefined) return site === 'same-origin';
  try {
    return new URL(origin).host === headers.host;
  } catch {
    return false; // "null" (sandboxed frames, file:) and anything unparsable
  }
}

/** Whether the request carries the session's CSRF token (compared in constant time). */
export function carriesCsrfToken(headers: IncomingHttpHeaders, session: ConsoleSession): boolean {
  const sent = headers[CSRF_HEADER];
  if (typeof sent !== 'string') return false;
  const a = Buffer.from(digest(sent));
  const b = Buffer.from(digest(session.csrfToken));
  return timingSafeEqual(a, b);
}
