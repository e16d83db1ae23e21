import type { AppKey } from '../auth/app-key.js';
import { GatewayError } from '../errors/index.js';
import type { Endpoint } from './endpoints.js';

const notAllowed = (message: string): GatewayError => new GatewayError('endpoint_not_allowed', message);

/**
 * An app key may use an endpoint when the gateway can hold everything the key restricts there
 * (SECURITY.md, "Endpoint policy"); the caller skips this for an endpoint the owner granted in
 * the key's `endpoints`.
 */
export function confine(key: AppKey, method: string, path: string, endpoint: Endpoint | undefined): void {
  const grant = `The owner can grant it in the key's "endpoints" ("${method} ${path}").`;
  if (endpoint === undefined) {
    throw notAllowed(`Key "${key.name}" may not use ${method} ${path}: the gateway does not know this endpoint, so it cannot hold the key's models, budgets and objects there. ${grant}`);
  }
  const can = endpoint.enforces;
  const cannot: string[] = [];
  if (key.models !== undefined && !can.models) cannot.push('its model list');
  if ((key.limits.budgetTokens != null || key.limits.budgetUsd != null) && !can.budget) cannot.push('its budget');
  if (key.maxTokensCeiling !== undefined && !can.ceiling) cannot.push('its max_tokens ceiling');
  if (key.persona !== undefined && key.persona.mode !== 'off' && key.persona.text !== '' && !can.persona) cannot.push('its persona');
  if (cannot.length > 0) throw notAllowed(`Key "${key.name}" may not use ${endpoint.name}: the gateway cannot hold ${cannot.join(' or ')} there. ${grant}`);
}
