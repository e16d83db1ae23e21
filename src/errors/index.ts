export {
  ERROR_CATALOGUE,
  REFUSED_BEFORE_UPSTREAM,
  UPSTREAM_STATUS,
  isRecordedErrorCode,
  upstreamStatusCode,
  type ErrorCode,
  type ErrorSpec,
  type RecordedErrorCode,
  type UpstreamStatusCode,
} from './catalogue.js';
export { GatewayError, type GatewayErrorOptions } from './gateway-error.js';
export {
  sendError,
  toGatewayError,
  openAiErrorBody,
  envelopeErrorBody,
  sseErrorEvent,
  envelopeSseErrorEvent,
  sseErrorFrame,
  anthropicErrorType,
  anthropicErrorBody,
  anthropicSseErrorEvent,
  errorFormatOf,
  type ErrorFormat,
  type OpenAiError,
  type EnvelopeError,
} from './render.js';
