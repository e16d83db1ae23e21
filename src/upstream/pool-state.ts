import type { KeyStateReport, UpstreamStateReport } from '../admin/console-types.js';
import type { PoolMember } from './pool-member.js';

export type { KeyStateReport, UpstreamStateReport };

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
    lastErrors: member.lastErrors.latest(),
  };
}
