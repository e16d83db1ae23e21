// The console's one way to the server: same-origin fetches carrying the session cookie, and on a
// change the session's CSRF token (routes/admin.ts refuses a change without it).

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

interface SessionInfo {
  csrf_token: string;
  expires_at: string;
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
    csrfToken = (await call<SessionInfo>('GET', '/console/session')).csrf_token;
    return true;
  } catch {
    return false;
  }
}

export async function signIn(token: string): Promise<void> {
  csrfToken = (await call<SessionInfo>('POST', '/console/session', { token })).csrf_token;
}

export async function signOut(): Promise<void> {
  await call<void>('DELETE', '/console/session').catch(() => undefined);
  csrfToken = '';
}

// Shapes of the admin API's answers (README, "Admin API").

export interface AppKey {
  name: string;
  prefix: string;
  source: 'config' | 'admin' | 'cli';
  enabled: boolean;
  expires_at: string | null;
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  rpd: number | null;
  budget_tokens: number | null;
  budget_usd: number | null;
  budget_period: 'day' | 'month' | 'total' | null;
  last_used_at: string | null;
}

export interface UsageRow {
  group: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  totalTokens: number;
  costUsd: number | null;
  errors: number;
}

export interface RecentRequest {
  time: string;
  request_id: string;
  method: string;
  path: string;
  status: number;
  caller: string | null;
  model: string | null;
  upstream: string | null;
  latency_ms: number;
  total_tokens: number | null;
  error: string | null;
}

export interface UsageFilter {
  key?: string;
  since?: Date;
  until?: Date;
  by: 'key' | 'model' | 'day';
}

export async function usage(filter: UsageFilter): Promise<UsageRow[]> {
  const query = new URLSearchParams({ by: filter.by });
  if (filter.key) query.set('key', filter.key);
  if (filter.since) query.set('since', filter.since.toISOString());
  if (filter.until) query.set('until', filter.until.toISOString());
  return (await api.get<{ data: UsageRow[] }>(`/admin/usage?${query}`)).data;
}
