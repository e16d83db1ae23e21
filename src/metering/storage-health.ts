/**
 * Whether the usage database is reachable, as the usage writer and key store last saw it.
 * Requests fail closed (503) while it is down, unless `fail_open` is set.
 */
export class StorageHealth {
  private down: string | undefined;

  get healthy(): boolean {
    return this.down === undefined;
  }

  /** The reason it is down (for logs and the admin API); never contains a password. */
  get reason(): string | undefined {
    return this.down;
  }

  markDown(error: unknown): boolean {
    const wasHealthy = this.down === undefined;
    this.down = error instanceof Error ? error.message : String(error);
    return wasHealthy;
  }

  markUp(): boolean {
    const wasDown = this.down !== undefined;
    this.down = undefined;
    return wasDown;
  }
}
