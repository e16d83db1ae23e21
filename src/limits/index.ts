export { LimitTracker, type LimitTrackerOptions } from './limit-tracker.js';
export type { Demand, Estimate, KeyLimits, LimitStore, LoadUsage, Reservation, UsageBaseline } from './limit-store.js';
export { formatGoDuration } from './go-duration.js';
export { RedisLimitStore, type RedisLimitStoreOptions } from './redis-limit-store.js';
export { FailoverLimitStore, type FailoverLimitStoreOptions, type SharedHealth } from './failover-limit-store.js';
export { reservationHoldMs } from './redis-keys.js';
