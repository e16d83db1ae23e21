export type StorageErrorCode = 'open_failed' | 'migration_failed' | 'unavailable' | 'conflict' | 'not_found';

/**
 * The one error type `storage/` throws. Callers branch on `code` (e.g. `conflict` → 409,
 * `unavailable` → 503); the driver error, if any, stays on `cause` for logs.
 */
export class StorageError extends Error {
  readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StorageError';
    this.code = code;
  }
}

/** True for a UNIQUE violation from either driver (SQLite error code or PostgreSQL SQLSTATE 23505). */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('code' in error)) return false;
  const code = (error as { code: unknown }).code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}

/** Wraps a driver failure so callers only ever see StorageError; StorageErrors pass through. */
export function toStorageError(error: unknown, action: string): StorageError {
  if (error instanceof StorageError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  if (isUniqueViolation(error)) return new StorageError('conflict', `${action}: ${reason}`, { cause: error });
  return new StorageError('unavailable', `${action}: ${reason}`, { cause: error });
}
