export type { Config, ChatDefaults } from './config.js';
export { loadConfig, ConfigError, type LoadConfigOptions } from './load-config.js';
export { FIELDS, FIELD_NAMES } from './fields.js';
export { DEFAULTS } from './defaults.js';
export { upstreamsFromConfig, type PoolSettings, type UpstreamConfig, type UpstreamType } from './upstream-entry.js';
export type { TracingConfig, TraceSamplerName } from './tracing-config.js';
