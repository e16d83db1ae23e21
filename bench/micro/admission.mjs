// Per-request cost of admission + token estimate, in µs/op: a ~2 KB chat body, an app key with
// rpm + tpm + budget_usd far from its limits (the benchmark's production shape), admitted and
// settled in a loop against the in-memory LimitTracker. Best of several runs.
//
//   node --import tsx bench/micro/admission.mjs [--src=DIR] [--runs=7] [--ops=20000] [--limits=rpm] [--api=closure]
//
// --limits=rpm gives the key rpm alone (no estimate at all: what is left is the admission itself).
// --src points at a source tree (default: this repository's src/), so an older copy can be
// measured the same way. Uses `Admission.admitPrompt` when the tree has it (the byte bound), else
// `admit` with the estimate callback the routes pass (tokenizes every prompt).
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=')));
const src = path.resolve(args.src ?? new URL('../../src', import.meta.url).pathname);
const runs = Number(args.runs ?? 7);
const ops = Number(args.ops ?? 20_000);
const load = (file) => import(pathToFileURL(path.join(src, file)).href);

const { Admission } = await load('policy/admission.ts');
const { LimitTracker } = await load('limits/limit-tracker.ts');
const { PriceTable } = await load('metering/pricing.ts');
const { estimatePromptTokens } = await load('metering/token-estimate.ts');
const { requestedMaxTokens } = await load('metering/estimate-usage.ts');
const { toAppKey } = await load('auth/app-key.ts');

const MODEL = 'gpt-4o-mini';
const row = {
  id: 'key-1', name: 'bench', keyHash: '0'.repeat(64), keyPrefix: 'oa-bench', source: 'config',
  createdAt: new Date(0), updatedAt: new Date(0), lastUsedAt: null, enabled: true, expiresAt: null, models: null,
  rpm: 1_000_000_000, tpm: args.limits === 'rpm' ? null : 1_000_000_000_000, rpd: null, budgetTokens: null, budgetUsd: args.limits === 'rpm' ? null : 1_000_000_000, budgetPeriod: null,
  botDesc: null, personaMode: null, defaults: null, maxTokensCeiling: null, allowOrigin: null, endpoints: null, metadata: null,
};
const caller = { kind: 'app_key', name: 'bench', key: toAppKey(row) };
const prices = new PriceTable();
const tracker = new LimitTracker({ loadUsage: async () => ({ requests: 0, tokens: 0, costUsd: 0 }) });
const admission = new Admission(tracker, undefined, false, prices);

// 256 different bodies of ~2 KB of English-like prose, so the tokenizer's merge cache sees what it would in production.
const WORDS = ('the of and to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part request answer service customer order account please thank help data report error network function value server client key limit budget model token stream').split(' ');
let seed = 42;
const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648);
const prose = (bytes) => {
  let text = '';
  while (text.length < bytes) text += `${WORDS[Math.floor(random() * WORDS.length)]}${random() < 0.08 ? '. ' : ' '}`;
  return text.trim();
};
const bodies = Array.from({ length: 256 }, () => ({
  model: MODEL,
  messages: [
    { role: 'system', content: prose(300) },
    { role: 'user', content: prose(600) },
    { role: 'assistant', content: prose(500) },
    { role: 'user', content: prose(450) },
  ],
  max_tokens: 256,
}));
const bodyBytes = Buffer.byteLength(JSON.stringify(bodies[0]));

const usePrompt = typeof admission.admitPrompt === 'function' && args.api !== 'closure';
const settleWith = { tokens: 700, costUsd: 0.0002 };

function admitOne(body) {
  if (usePrompt) return admission.admitPrompt(caller, MODEL, 'chat', body);
  return admission.admit(caller, MODEL, () => {
    const prompt = estimatePromptTokens('chat', body, MODEL);
    const completion = requestedMaxTokens(body);
    return { tokens: prompt + completion, costUsd: prices.cost(MODEL, { promptTokens: prompt, completionTokens: completion, cachedTokens: 0 }) ?? 0 };
  });
}

async function run(count) {
  const start = performance.now();
  for (let i = 0; i < count; i += 1) {
    let ticket = admitOne(bodies[i & 255]);
    if (typeof ticket.then === 'function') ticket = await ticket;
    ticket.settle(settleWith);
  }
  return ((performance.now() - start) * 1000) / count;
}

await run(ops); // warm-up: JIT, the first baseline load, the tokenizer's tables
const times = [];
for (let i = 0; i < runs; i += 1) times.push(await run(ops));
times.sort((a, b) => a - b);
const rss = process.memoryUsage().rss / 1024 / 1024;
console.log(`${usePrompt ? 'admitPrompt (byte bound)' : 'admit (estimate callback)'}, key with ${args.limits === 'rpm' ? 'rpm' : 'rpm+tpm+budget_usd'}: best ${times[0].toFixed(2)} µs/op, median ${times[Math.floor(runs / 2)].toFixed(2)} µs/op; body ${bodyBytes} B; RSS ${rss.toFixed(1)} MB; src ${path.relative(process.cwd(), src) || '.'}`);
