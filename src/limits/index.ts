export { LimitTracker, type LimitTrackerOptions } from './limit-tracker.js';
export type { Estimate, KeyLimits, LimitStore, LoadUsage, Reservation, UsageBaseline } from './limit-store.js';
export { formatGoDuration } from './go-duration.js';
