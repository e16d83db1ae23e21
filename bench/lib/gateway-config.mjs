// config.json for the gateway under test: N app keys with limits (the client uses the last one,
// so a linear scan would show), and optionally N upstreams in the `upstreams` array.
import { MODEL } from './fake-upstream.mjs';

const HIGH = { rpm: 1_000_000_000, tpm: 1_000_000_000_000, budget_usd: 1_000_000_000 };

export function appKeySecret(index) {
  return `sk-bench-app-${String(index).padStart(6, '0')}-0123456789abcdef`;
}

/**
 * `upstreams: 0` is the seed's shape (base_url + api_key). With `upstreams: N` the entries all
 * point at the fake upstream with their own key; only the last serves the benchmark's model, so
 * the upstream seeing `sk-upstream-pool-N` proves the request was routed through the pool. base_url
 * stays on loopback with a key of its own, so a gateway that ignores `upstreams` is detected
 * (and never reaches out to api.openai.com).
 */
export function gatewayConfig({ upstreamPort, keys, upstreams }) {
  const baseUrl = `http://127.0.0.1:${upstreamPort}/v1`;
  const config = {
    host: '127.0.0.1',
    base_url: baseUrl,
    api_key: upstreams > 0 ? 'sk-upstream-seed-not-routed' : 'sk-upstream-gateway',
    log_level: 'info',
    keys: Array.from({ length: keys }, (_, index) => ({ name: `bench-app-${index}`, key: appKeySecret(index), ...HIGH })),
  };
  if (upstreams > 0) {
    config.upstreams = Array.from({ length: upstreams }, (_, index) => ({
      name: `bench-up-${index + 1}`,
      type: 'openai-compatible',
      base_url: baseUrl,
      api_keys: [`sk-upstream-pool-${index + 1}`],
      weight: 1,
      models: index === upstreams - 1 ? [MODEL] : [`bench-other-${index + 1}`, `bench-other-${index + 1}-*`],
    }));
  }
  return { config, clientKey: appKeySecret(keys - 1), upstreamKey: upstreams > 0 ? `sk-upstream-pool-${upstreams}` : 'sk-upstream-gateway' };
}
