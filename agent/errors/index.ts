export { FerryError } from './ferry-error.js';
export { ConfigError, formatLocation, type ConfigProblem } from './config-error.js';
export { RetryableError } from './retryable-error.js';
export { PermanentError } from './permanent-error.js';
export { ERROR_CODES, type ErrorCode } from './codes.js';
