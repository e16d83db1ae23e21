/**
 * OpenTelemetry tracing, configured only by the standard OTEL_* environment variables
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/ and
 * https://opentelemetry.io/docs/specs/otel/protocol/exporter/). Tracing is on when an OTLP
 * endpoint is set, unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`; the other
 * variables are read (and checked) only then, so a deployment that sets them for other tools
 * but no endpoint is never refused.
 *
 * Deliberate limits: spans go out as OTLP/HTTP with JSON bodies, so `grpc` is refused;
 * `http/protobuf` (the spec's default, often written into templates) is accepted and sent as
 * JSON, which every OTLP/HTTP receiver (the Collector included) takes on the same path.
 */

/** The samplers of OTEL_TRACES_SAMPLER the gateway builds (the remote ones need other packages). */
export const TRACE_SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type TraceSamplerName = (typeof TRACE_SAMPLERS)[number];

export interface TracingConfig {
  readonly enabled: boolean;
  /** The full URL spans are POSTed to (`…/v1/traces`); empty when tracing is off. */
  readonly endpoint: string;
  /** Sent with every export (often a vendor's API key: never logged or echoed). */
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly compression: 'gzip' | 'none';
  /** `service.name` of the resource (default `openai-api`). */
  readonly serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES, decoded. */
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly sampler: { readonly name: TraceSamplerName; readonly ratio: number };
  /** The batch span processor (OTEL_BSP_*). */
  readonly batch: { readonly scheduleDelayMs: number; readonly exportTimeoutMs: number; readonly maxQueueSize: number; readonly maxExportBatchSize: number };
}

const DEFAULT_SERVICE_NAME = 'openai-api';

const TRACING_OFF: TracingConfig = {
  enabled: false,
  endpoint: '',
  headers: {},
  timeoutMs: 10_000,
  compression: 'none',
  serviceName: DEFAULT_SERVICE_NAME,
  resourceAttributes: {},
  sampler: { name: 'parentbased_always_on', ratio: 1 },
  batch: { scheduleDelayMs: 5000, exportTimeoutMs: 30_000, maxQueueSize: 2048, maxExportBatchSize: 512 },
};

/** The first of `names` set to a non-empty value (the signal-specific name goes first). */
function pick(env: NodeJS.ProcessEnv, ...names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value !== undefined && value !== '') return { name, value };
  }
  return undefined;
}

function httpUrl(value: string, name: string, fail: (message: string) => never): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail(`${name} (env var) is not a URL: expected an http:// or https:// URL such as http://localhost:4318`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`${name} (env var) must be an http:// or https:// URL (OTLP over HTTP), not ${url.protocol}`);
  return url;
}

/**
 * `key1=value1,key2=value2` with percent-encoded values (the W3C Baggage form the spec uses for
 * OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES). Values never appear in an error.
 */
function keyValueList(value: string, name: string, fail: (message: string) => never): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [index, item] of value.split(',').entries()) {
    if (item.trim() === '') continue;
    const equals = item.indexOf('=');
    const key = equals < 0 ? '' : item.slice(0, equals).trim();
    if (key === '') fail(`${name} (env var) entry ${index + 1} is not key=value: expected "key1=value1,key2=value2"`);
    let decoded: string;
    try {
      decoded = decodeURIComponent(item.slice(equals + 1).trim());
    } catch {
      return fail(`${name} (env var) entry ${index + 1} ("${key.slice(0, 40)}") has a malformed percent-encoding`);
    }
    out[key] = decoded;
  }
  return out;
}

function positiveInt(env: NodeJS.ProcessEnv, fallback: number, fail: (message: string) => never, ...names: string[]): number {
  const found = pick(env, ...names);
  if (found === undefined) return fallback;
  const number = /^\d+$/.test(found.value) ? Number(found.value) : NaN;
  if (!Number.isSafeInteger(number) || number <= 0) fail(`${found.name} (env var) is "${found.value.slice(0, 40)}": expected a whole number above 0`);
  return number;
}

/** The tracing part of Config from the OTEL_* variables; `fail` throws the one-line config error. */
export function tracingFromEnv(env: NodeJS.ProcessEnv, fail: (message: string) => never): TracingConfig {
  if (pick(env, 'OTEL_SDK_DISABLED')?.value.toLowerCase() === 'true') return TRACING_OFF;
  const exporter = pick(env, 'OTEL_TRACES_EXPORTER');
  if (exporter !== undefined) {
    const names = exporter.value.split(',').map((item) => item.trim().toLowerCase());
    if (names.every((item) => item === 'none')) return TRACING_OFF;
    if (names.some((item) => item !== 'otlp')) fail(`OTEL_TRACES_EXPORTER (env var) is "${exporter.value.slice(0, 40)}": the gateway exports traces by OTLP only ("otlp" or "none")`);
  }
  const signal = pick(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const base = signal === undefined ? pick(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') : undefined;
  if (signal === undefined && base === undefined) return TRACING_OFF;

  // The signal's own endpoint is used as is; the base one gets the signal's path appended.
  let endpoint: string;
  if (signal !== undefined) {
    endpoint = httpUrl(signal.value, signal.name, fail).href;
  } else {
    const url = httpUrl(base!.value, base!.name, fail);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/traces`;
    endpoint = url.href;
  }

  const protocol = pick(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL');
  if (protocol !== undefined && protocol.value !== 'http/json' && protocol.value !== 'http/protobuf') {
    fail(`${protocol.name} (env var) is "${protocol.value.slice(0, 40)}": the gateway exports OTLP over HTTP ("http/json"; "http/protobuf" is sent as JSON too), not gRPC`);
  }
  const compression = pick(env, 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION');
  if (compression !== undefined && compression.value !== 'gzip' && compression.value !== 'none') fail(`${compression.name} (env var) is "${compression.value.slice(0, 40)}": expected "gzip" or "none"`);

  const general = pick(env, 'OTEL_EXPORTER_OTLP_HEADERS');
  const specific = pick(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS');
  const headers = {
    ...(general ? keyValueList(general.value, general.name, fail) : {}),
    ...(specific ? keyValueList(specific.value, specific.name, fail) : {}),
  };

  const resourceVar = pick(env, 'OTEL_RESOURCE_ATTRIBUTES');
  const resourceAttributes = resourceVar ? keyValueList(resourceVar.value, resourceVar.name, fail) : {};
  const serviceName = pick(env, 'OTEL_SERVICE_NAME')?.value ?? resourceAttributes['service.name'] ?? DEFAULT_SERVICE_NAME;

  const samplerVar = pick(env, 'OTEL_TRACES_SAMPLER');
  const samplerName = (samplerVar?.value.toLowerCase() ?? 'parentbased_always_on') as TraceSamplerName;
  if (!TRACE_SAMPLERS.includes(samplerName)) fail(`OTEL_TRACES_SAMPLER (env var) is "${samplerVar!.value.slice(0, 40)}": expected one of ${TRACE_SAMPLERS.join(', ')}`);
  let ratio = 1;
  const ratioVar = samplerName.endsWith('traceidratio') ? pick(env, 'OTEL_TRACES_SAMPLER_ARG') : undefined;
  if (ratioVar !== undefined) {
    ratio = /^(\d+\.?\d*|\.\d+)$/.test(ratioVar.value) ? Number(ratioVar.value) : NaN;
    if (!(ratio >= 0 && ratio <= 1)) fail(`OTEL_TRACES_SAMPLER_ARG (env var) is "${ratioVar.value.slice(0, 40)}": expected a sampling ratio from 0 to 1`);
  }

  return {
    enabled: true,
    endpoint,
    headers,
    timeoutMs: positiveInt(env, TRACING_OFF.timeoutMs, fail, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'),
    compression: (compression?.value as 'gzip' | 'none' | undefined) ?? 'none',
    serviceName,
    resourceAttributes,
    sampler: { name: samplerName, ratio },
    batch: {
      scheduleDelayMs: positiveInt(env, TRACING_OFF.batch.scheduleDelayMs, fail, 'OTEL_BSP_SCHEDULE_DELAY'),
      exportTimeoutMs: positiveInt(env, TRACING_OFF.batch.exportTimeoutMs, fail, 'OTEL_BSP_EXPORT_TIMEOUT'),
      maxQueueSize: positiveInt(env, TRACING_OFF.batch.maxQueueSize, fail, 'OTEL_BSP_MAX_QUEUE_SIZE'),
      maxExportBatchSize: positiveInt(env, TRACING_OFF.batch.maxExportBatchSize, fail, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
    },
  };
}
