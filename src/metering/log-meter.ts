import type { Logger } from '../observability/logger.js';
import type { Meter, UsageEvent } from './usage-event.js';

/** A meter that only logs: used when no usage database is configured. */
export class LogMeter implements Meter {
  constructor(private readonly logger: Logger) {}

  record(event: UsageEvent): void {
    if (!event.usage) return;
    this.logger.info(
      {
        reqId: event.requestId,
        caller: event.caller,
        model: event.model,
        prompt_tokens: event.usage.promptTokens,
        completion_tokens: event.usage.completionTokens,
        cached_tokens: event.usage.cachedTokens,
        reasoning_tokens: event.usage.reasoningTokens,
        usage_source: event.usageSource,
      },
      'usage',
    );
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}
