export { LimitTracker, type LimitTrackerOptions } from './limit-tracker.js';
export type { Demand, Estimate, KeyLimits, LimitStore, LoadUsage, Reservation, UsageBaseline } from './limit-store.js';
export { formatGoDuration } from './go-duration.js';
