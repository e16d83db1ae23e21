import type { Caller } from '../auth/authenticator.js';
import { GatewayError } from '../errors/index.js';
import type { Logger } from '../observability/logger.js';
import type { ObjectKind } from '../policy/endpoints.js';
import type { ObjectsRepository, OwnedObject, PendingUsage } from '../storage/objects-repository.js';

export type { OwnedObject, PendingUsage };

/** Objects remembered in memory; the database holds them all. */
const CACHE_LIMIT = 50_000;

/** The owner id an object is recorded under: the app key's id, or the caller's name for unrestricted callers. */
export function ownerIdOf(caller: Caller): string {
  return caller.key ? caller.key.id : `caller:${caller.name}`;
}

const notFound = (kind: string, id: string): GatewayError =>
  // Worded like the upstream's own 404 so an object of another key looks like no object at all.
  new GatewayError('object_not_found', `No such ${kind.replace(/_/g, ' ')} object: ${id.slice(0, 128)}.`, { param: 'id' });

/**
 * Who created which object through the gateway. App keys may use only their own objects (404
 * otherwise, as if it did not exist); access tokens may use every object. Every object also
 * remembers the upstream and upstream key that created it, so its follow-ups go to the account
 * that holds it (affinity in multi-key pools).
 */
export class Ownership {
  private readonly cache = new Map<string, OwnedObject>();

  constructor(
    private readonly repository: ObjectsRepository,
    private readonly logger: Logger,
  ) {}

  /** The object as recorded, from memory or the database. */
  async find(id: string): Promise<OwnedObject | undefined> {
    const hit = this.cache.get(id);
    if (hit !== undefined) return hit;
    const found = await this.storage(() => this.repository.find(id));
    if (found !== undefined) this.remember(found);
    return found;
  }

  /**
   * The object a request names, when the caller may use it: its record (for affinity), or
   * undefined for an unrestricted caller and an object the gateway never saw. Throws 404 for an
   * app key and an object it does not own.
   */
  async authorize(caller: Caller, kind: ObjectKind, id: string): Promise<OwnedObject | undefined> {
    const found = await this.find(id);
    if (caller.key === undefined) return found;
    if (found === undefined || found.keyId !== caller.key.id || found.kind !== kind) throw notFound(kind, id);
    return found;
  }

  /** Records new objects; visible to this process at once, to others once written. */
  async record(objects: readonly OwnedObject[]): Promise<void> {
    if (objects.length === 0) return;
    // An id already known keeps its owner: the database's insert keeps the first one too.
    for (const object of objects) if (!this.cache.has(object.id)) this.remember(object);
    try {
      await this.repository.insert(objects);
    } catch (error) {
      // The object exists upstream and the caller is told its id; this process still knows the
      // owner. Logged, never thrown: failing the answer would hide an object the caller paid for.
      this.logger.error({ err: (error as Error).message, objects: objects.length }, 'could not record object owners; other instances will not see them');
    }
  }

  /**
   * Claims the recording of a background response's usage (see ObjectsRepository.claimUsage):
   * true for exactly one caller across instances. Either way the usage is recorded now, and this
   * process remembers it, so its later retrieves are relayed without a look at their usage.
   * Throws the StorageError when the database cannot decide (nothing is claimed then).
   */
  async claimUsage(object: OwnedObject, at: Date): Promise<boolean> {
    const claimed = await this.repository.claimUsage(object.id, at);
    if (object.pendingUsage !== undefined) {
      this.cache.delete(object.id);
      this.remember({ ...object, pendingUsage: { ...object.pendingUsage, recordedAt: at } });
    }
    return claimed;
  }

  /** Of these ids, the ones the caller owns (list filtering): one query for the misses. */
  async ownedAmong(caller: Caller, kind: ObjectKind, ids: readonly string[]): Promise<Set<string>> {
    const owner = ownerIdOf(caller);
    const owned = new Set<string>();
    const misses: string[] = [];
    for (const id of ids) {
      const hit = this.cache.get(id);
      if (hit === undefined) misses.push(id);
      else if (hit.keyId === owner && hit.kind === kind) owned.add(id);
    }
    if (misses.length > 0) {
      for (const found of await this.storage(() => this.repository.findMany(misses))) {
        this.remember(found);
        if (found.keyId === owner && found.kind === kind) owned.add(found.id);
      }
    }
    return owned;
  }

  private remember(object: OwnedObject): void {
    if (this.cache.size >= CACHE_LIMIT) {
      // Oldest first: Map keeps insertion order.
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(object.id, object);
  }

  private async storage<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      throw new GatewayError('storage_unavailable', 'The ownership database is unavailable, so objects cannot be checked; try again shortly.', { cause: error });
    }
  }
}
