import type { UpstreamAnswer, UpstreamClient, UpstreamRequest } from './client.js';
import { upstreamFailure, type TimeoutSettings } from './failure.js';
import { sendUpstream } from './send.js';
import { Upstream, type UpstreamOptions } from './upstream.js';

/** One upstream, no retries: the seed's shape (`api_key` + `base_url`). */
export class SingleUpstream implements UpstreamClient {
  private readonly upstream: Upstream;

  constructor(
    options: UpstreamOptions,
    private readonly timeouts: TimeoutSettings,
  ) {
    this.upstream = new Upstream(options);
  }

  async send(request: UpstreamRequest): Promise<UpstreamAnswer> {
    try {
      const response = await sendUpstream(this.upstream, request, this.upstream.keys.next(), this.timeouts);
      return { response, upstream: this.upstream.name, attempts: 1 };
    } catch (error) {
      throw upstreamFailure(error, this.upstream.name, this.timeouts);
    }
  }

  acceptsIncludeUsage(): boolean {
    return true;
  }

  secrets(): readonly string[] {
    return this.upstream.keys.all();
  }

  close(): Promise<void> {
    return this.upstream.close();
  }
}
