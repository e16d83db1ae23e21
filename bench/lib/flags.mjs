// The bench's command line. Defaults give a full run of 13-15 minutes on two cores; --smoke
// shrinks everything to a correctness pass of about half a minute.

export const USAGE = `Usage: npm run bench -- [flags]

A full run (all targets, all scenarios) rewrites the tables in bench/RESULTS.md (and README.md with
--readme) and bench/results/latest.raw.json; a partial run prints its tables and writes
bench/results/partial.raw.json only.

  --smoke                 ~30 s: every target checked (status, body, key swap), then each
                          scenario run briefly; exits non-zero on any failure; writes no RESULTS.md
  --rounds N              rounds over all targets (medians are reported)         default 3
  --duration S            seconds measured per target and scenario               default 5
  --warmup S              seconds of load before each measurement                default 1
  --targets LIST          direct,gateway,relay,nginx,portkey                     default all
  --scenarios LIST        json-c1,json-c64,sse-c1,sse-c64,slow,scaling           default all
  --streams N             concurrent slow streams                                default 1000
  --stream-interval MS    pause between a slow stream's events                   default 400
  --keys LIST             app-key counts for the scaling scenario                default 10,1000,10000
  --upstreams LIST        upstream counts for the scaling scenario               default 1,10,50
  --scaling-rounds N      rounds of the scaling scenario                         default 5
  --scaling-duration S    seconds measured per configuration and round           default 3
  --c1-split              keep the server on its own CPU for the 1-connection scenarios too (by
                          default it joins the load generator's CPU there: on a VM, waking an idle
                          CPU adds ~0.25 ms p50 and ms at p99 to every hop, which would swamp the
                          latency the targets add)
  --max-other-load P      re-measure a window (twice at most, a quarter of the windows in all)
                          when other processes used more than P % of a CPU meanwhile   default 50
  --cpu-prof              V8 CPU profile (the profiler of node --cpu-prof) of the gateway and the
                          relay during each measured window: hottest functions, src/ file:line
  --redis [URL]           instead of the scenarios above: a gateway with limits shared through
                          Redis (redis_url) next to one with in-memory limits, JSON at 64
                          connections, --scaling-rounds × --scaling-duration; prints its table
                          and writes bench/results/redis.raw.json       default URL redis://127.0.0.1:6379
  --readme                also replace the performance table in README.md
  --no-build              skip "npm run build" (when dist/ is fresh)
  --no-install            skip installing bench/node_modules
  --keep                  keep the temp dir (configs, logs, databases, profiles)
  --help
`;

const ALL_TARGETS = ['direct', 'gateway', 'relay', 'nginx', 'portkey'];
const ALL_SCENARIOS = ['json-c1', 'json-c64', 'sse-c1', 'sse-c64', 'slow', 'scaling'];

function number(name, value, { min = 0, integer = false } = {}) {
  const parsed = Number(value);
  if (value === undefined || !Number.isFinite(parsed) || parsed < min || (integer && !Number.isInteger(parsed))) throw new Error(`${name} needs ${integer ? 'an integer' : 'a number'} ≥ ${min}, got ${value ?? 'nothing'}`);
  return parsed;
}

function list(name, value, allowed) {
  if (value === undefined) throw new Error(`${name} needs a comma-separated list`);
  const items = value.split(',').map((item) => item.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item)) throw new Error(`${name}: unknown "${item}" (known: ${allowed.join(', ')})`);
  return items;
}

function counts(name, value) {
  if (value === undefined) throw new Error(`${name} needs a comma-separated list of counts`);
  return value.split(',').map((item) => number(name, item, { min: 1, integer: true }));
}

export function parseFlags(argv) {
  const smoke = argv.includes('--smoke');
  const flags = {
    smoke,
    rounds: smoke ? 1 : 3,
    durationMs: smoke ? 300 : 5000,
    warmupMs: smoke ? 0 : 1000,
    targets: ALL_TARGETS,
    scenarios: ALL_SCENARIOS,
    streams: smoke ? 20 : 1000,
    streamIntervalMs: smoke ? 10 : 400,
    keys: smoke ? [10, 100] : [10, 1000, 10000],
    upstreams: smoke ? [2] : [1, 10, 50],
    scalingRounds: smoke ? 1 : 5,
    scalingDurationMs: smoke ? 300 : 3000,
    maxOtherLoad: 50,
    c1Split: false,
    cpuProf: false,
    readme: false,
    build: true,
    install: true,
    keep: false,
    help: false,
    redisUrl: undefined,
  };
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index];
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => inline ?? argv[++index];
    switch (name) {
      case '--smoke':
        break;
      case '--rounds':
        flags.rounds = number(name, value(), { min: 1, integer: true });
        break;
      case '--duration':
        flags.durationMs = number(name, value(), { min: 0.1 }) * 1000;
        break;
      case '--warmup':
        flags.warmupMs = number(name, value()) * 1000;
        break;
      case '--targets':
        flags.targets = list(name, value(), ALL_TARGETS);
        break;
      case '--scenarios':
        flags.scenarios = list(name, value(), ALL_SCENARIOS);
        break;
      case '--streams':
        flags.streams = number(name, value(), { min: 1, integer: true });
        break;
      case '--stream-interval':
        flags.streamIntervalMs = number(name, value(), { min: 1, integer: true });
        break;
      case '--keys':
        flags.keys = counts(name, value());
        break;
      case '--upstreams':
        flags.upstreams = counts(name, value());
        break;
      case '--max-other-load':
        flags.maxOtherLoad = number(name, value());
        break;
      case '--c1-split':
        flags.c1Split = true;
        break;
      case '--scaling-rounds':
        flags.scalingRounds = number(name, value(), { min: 1, integer: true });
        break;
      case '--scaling-duration':
        flags.scalingDurationMs = number(name, value(), { min: 0.1 }) * 1000;
        break;
      case '--cpu-prof':
        flags.cpuProf = true;
        break;
      case '--readme':
        flags.readme = true;
        break;
      case '--no-build':
        flags.build = false;
        break;
      case '--no-install':
        flags.install = false;
        break;
      case '--redis':
        // The URL is optional: take the next argument only when it is one.
        flags.redisUrl = inline ?? (/^rediss?:\/\//.test(argv[index + 1] ?? '') ? argv[++index] : 'redis://127.0.0.1:6379');
        break;
      case '--keep':
        flags.keep = true;
        break;
      case '--help':
      case '-h':
        flags.help = true;
        break;
      default:
        throw new Error(`unknown flag ${arg}`);
    }
  }
  flags.partial = flags.targets.length < ALL_TARGETS.length - (flags.targets.includes('direct') ? 0 : 1) || flags.scenarios.length < ALL_SCENARIOS.length;
  // The direct call is the reference every "added" number is measured against.
  if (!flags.targets.includes('direct')) flags.targets = ['direct', ...flags.targets];
  return flags;
}
