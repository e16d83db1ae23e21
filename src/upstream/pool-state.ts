import type { UpstreamType } from '../config/upstream-entry.js';
import type { CircuitState } from './health.js';
import type { PoolMember } from './pool-member.js';

/** One key as the admin/status view shows it: never the key, only its index and last four characters. */
export interface KeyStateReport {
  index: number;
  /** `…abcd`; `…` for a key too short to show any of it; `none` for a keyless upstream. */
  hint: string;
  status: 'healthy' | 'cooling' | 'disabled';
  /** ISO time a cooling key is used again. */
  coolingUntil?: string;
  /** Why a key is disabled (e.g. "HTTP 401"), and since when (ISO); it stays so until reload. */
  disabledReason?: string;
  disabledAt?: string;
  inFlight: number;
  /** Since start. */
  requests: number;
  errors: number;
}

export interface UpstreamStateReport {
  name: string;
  type: UpstreamType;
  weight: number;
  /** half-open: the pause is over and the next request (one at a time) probes the upstream. */
  circuit: CircuitState;
  /** ISO time an open circuit lets a probe through. */
  circuitOpenUntil?: string;
  inFlight: number;
  /** Over the circuit window (`circuit_window` seconds): attempts, failed attempts (connect errors, timeouts, 5xx), their ratio. */
  windowSeconds: number;
  requests: number;
  errors: number;
  errorRate: number;
  keys: KeyStateReport[];
}

const iso = (ms: number): string => new Date(ms).toISOString();

export function memberReport(member: PoolMember, now: number): UpstreamStateReport {
  const circuit = member.circuit.state(now);
  const window = member.circuit.window;
  const { requests, errors } = window.totals(now);
  return {
    name: member.name,
    type: member.config.type,
    weight: member.weight,
    circuit: circuit.state,
    ...(circuit.until === undefined ? {} : { circuitOpenUntil: iso(circuit.until) }),
    inFlight: member.inFlight,
    windowSeconds: window.windowMs / 1000,
    requests,
    errors,
    errorRate: requests === 0 ? 0 : Number((errors / requests).toFixed(3)),
    keys: member.keys.map((key) => {
      const health = key.health.status(now);
      const report: KeyStateReport = { index: key.index, hint: key.hint, status: health.status, inFlight: key.inFlight, requests: key.requests, errors: key.errors };
      if (health.status === 'cooling') report.coolingUntil = iso(health.until);
      if (health.status === 'disabled') {
        report.disabledReason = health.reason;
        report.disabledAt = iso(health.at);
      }
      return report;
    }),
  };
}
