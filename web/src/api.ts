// The console's one way to the server: same-origin fetches carrying the session cookie, and on a
// change the session's CSRF token (routes/admin.ts refuses a change without it).
import type { LatencyAnswer, SessionAnswer, UsageGroupBy, UsageReportRow as UsageRow } from '../../src/admin/console-types.js';

let csrfToken = '';
let onSignedOut: () => void = () => undefined;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function whenSignedOut(callback: () => void): void {
  onSignedOut = callback;
}


async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken;
  const response = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return undefined as T;
  const data = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith('/console/session')) onSignedOut();
    throw new ApiError(response.status, data.error?.message ?? `HTTP ${response.status}`);
  }
  return data as T;
}

export const api = {
  get: <T>(path: string) => call<T>('GET', path),
  post: <T>(path: string, body?: unknown) => call<T>('POST', path, body ?? {}),
  patch: <T>(path: string, body: unknown) => call<T>('PATCH', path, body),
  del: (path: string) => call<void>('DELETE', path),
};

/** Whether a session is live (restores its CSRF token after a page reload). */
export async function resumeSession(): Promise<boolean> {
  try {
    csrfToken = (await call<SessionAnswer>('GET', '/console/session')).csrf_token;
    return true;
  } catch {
    return false;
  }
}

export async function signIn(token: string): Promise<void> {
  csrfToken = (await call<SessionAnswer>('POST', '/console/session', { token })).csrf_token;
}

export async function signOut(): Promise<void> {
  await call<void>('DELETE', '/console/session').catch(() => undefined);
  csrfToken = '';
}

// The admin API's answers, as the server declares them (type-only: nothing of the server is bundled).
export type {
  IssuedKey,
  LatencyAnswer,
  PublicKey as AppKey,
  RecentRequest,
  ReloadAnswer,
  StatusAnswer,
  UpstreamErrorReport,
  UpstreamStateReport,
  UsageGroupBy,
  UsageReportRow as UsageRow,
} from '../../src/admin/console-types.js';

export interface UsageFilter {
  key?: string;
  upstream?: string;
  since?: Date;
  until?: Date;
  by: UsageGroupBy;
}

export async function usage(filter: UsageFilter): Promise<UsageRow[]> {
  const query = new URLSearchParams({ by: filter.by });
  if (filter.key) query.set('key', filter.key);
  if (filter.upstream) query.set('upstream', filter.upstream);
  if (filter.since) query.set('since', filter.since.toISOString());
  if (filter.until) query.set('until', filter.until.toISOString());
  return (await api.get<{ data: UsageRow[] }>(`/admin/usage?${query}`)).data;
}

export async function latency(since: Date): Promise<LatencyAnswer> {
  return api.get<LatencyAnswer>(`/admin/latency?${new URLSearchParams({ since: since.toISOString() })}`);
}
