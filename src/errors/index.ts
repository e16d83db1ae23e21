export { ERROR_CATALOGUE, type ErrorCode } from './catalogue.js';
export { GatewayError, type GatewayErrorOptions } from './gateway-error.js';
export { sendError, toGatewayError, openAiErrorBody, envelopeErrorBody, errorFormatOf, type ErrorFormat } from './render.js';
