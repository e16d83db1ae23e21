import type { Logger } from '../observability/logger.js';
import type { SharedRedis } from '../storage/redis.js';
import { UpstreamKeyMarks } from '../storage/upstream-key-marks.js';
import type { KeyVerdict } from '../upstream/key-verdict.js';
import type { UpstreamPool } from '../upstream/pool.js';
import { decodeMark, decodeVerdict, encodeMark, encodeVerdict, markId, UPSTREAM_KEYS_CHANNEL } from './messages.js';

/**
 * How long a set-aside key stays marked in Redis for instances that start later. Locally a key
 * is set aside until reload; a shared mark must not outlive the operator's fix for long, so it
 * expires, and a reload clears the marks of the keys it loads.
 */
export const DISABLED_MARK_MS = 15 * 60 * 1000;

type Pool = Pick<UpstreamPool, 'applyVerdict' | 'sharedKeyNames'>;

/**
 * Shares upstream key health between instances: a key one instance saw refused (401/402/403,
 * out of quota) or rate-limited (429) is set aside or rested on the others at once, and an
 * instance starting later reads the marks still live. Circuits stay per instance (see
 * docs/architecture.md). Failures to reach Redis only cost the others one failed attempt each.
 */
export class SharedKeyHealth {
  private readonly marks: UpstreamKeyMarks;

  constructor(
    private readonly redis: SharedRedis,
    private readonly pool: () => Pool,
    private readonly logger: Logger,
    private readonly instanceId: string,
  ) {
    this.marks = new UpstreamKeyMarks(redis);
  }

  async start(): Promise<void> {
    await this.redis.subscribe(UPSTREAM_KEYS_CHANNEL, (message) => this.receive(message));
  }

  /** What this instance's pool learned (PoolOptions.onKeyVerdict): stored for later starters, then published. */
  readonly report = (verdict: KeyVerdict): void => {
    // A rest under a millisecond (Retry-After: 0) is over before anyone could apply it.
    if (!this.redis.healthy || (verdict.state === 'cooling' && verdict.ms < 1)) return;
    const ttlMs = verdict.state === 'disabled' ? DISABLED_MARK_MS : verdict.ms;
    const stored = this.marks.put(markId(verdict.upstream, verdict.key), encodeMark(verdict), ttlMs);
    const published = this.redis.publish(UPSTREAM_KEYS_CHANNEL, encodeVerdict(this.instanceId, verdict));
    Promise.all([stored, published]).catch((error: unknown) => {
      this.logger.warn({ err: (error as Error).message, upstream: verdict.upstream }, 'upstream key health not shared (Redis unreachable)');
    });
  };

  /**
   * Applies the live marks to a new pool. At start every mark; after a reload only the rests:
   * a reload is how an operator retries a key the upstream refused, so its marks are cleared.
   */
  async restore(pool: Pool, on: 'start' | 'reload'): Promise<void> {
    const names = pool.sharedKeyNames();
    try {
      const ids = names.map((name) => markId(name.upstream, name.key));
      const marks = await this.marks.read(ids);
      const cleared: string[] = [];
      names.forEach((name, index) => {
        const mark = marks[index];
        if (mark === undefined) return;
        const verdict = decodeMark(name.upstream, name.key, mark.value, mark.ttlMs);
        if (verdict === undefined) return;
        if (verdict.state === 'disabled' && on === 'reload') cleared.push(ids[index]!);
        else if (pool.applyVerdict(verdict)) this.logApplied(verdict, 'marked in the shared Redis');
      });
      await this.marks.remove(cleared);
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'shared upstream key health not read (Redis unreachable); starting with every key healthy');
    }
  }

  private receive(message: string): void {
    const decoded = decodeVerdict(message);
    if (decoded === undefined) {
      this.logger.warn({ channel: UPSTREAM_KEYS_CHANNEL, chars: message.length }, 'ignored a malformed message on the shared Redis');
      return;
    }
    if (decoded.from === this.instanceId) return;
    if (this.pool().applyVerdict(decoded.verdict)) this.logApplied(decoded.verdict, 'reported by another instance');
  }

  private logApplied(verdict: KeyVerdict, how: string): void {
    const fields = { upstream: verdict.upstream, keyFingerprint: verdict.key };
    if (verdict.state === 'disabled') this.logger.warn({ ...fields, status: verdict.status }, `upstream key disabled until reload: ${how}`);
    else this.logger.info({ ...fields, coolingMs: verdict.ms }, `upstream key rests: ${how}`);
  }
}
