export type { Config, ChatDefaults } from './config.js';
export { loadConfig, ConfigError, type LoadConfigOptions } from './load-config.js';
export { FIELDS, FIELD_NAMES } from './fields.js';
export { DEFAULTS } from './defaults.js';
