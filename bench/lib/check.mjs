// Before any load: every target must answer correctly — status 200, the fake upstream's answer
// intact (JSON and stream), and the upstream must have seen the server-held key, never the caller's.
import { request } from 'undici';
import { JSON_TEXT, STREAM_TEXT, USAGE } from './fake-upstream.mjs';
import { chatBody, requestHeaders } from './load.mjs';
import { CHAT_PATH } from './targets.mjs';

export async function upstreamStats(upstream) {
  const { body } = await request(`http://127.0.0.1:${upstream.port}/__bench/stats`);
  return body.json();
}

async function post(target, stream) {
  const body = chatBody({ stream });
  const answer = await request(target.origin + CHAT_PATH, { method: 'POST', headers: requestHeaders(target, body), body });
  return { status: answer.statusCode, headers: answer.headers, text: await answer.body.text() };
}

function checkJson({ status, text }) {
  if (status !== 200) return `JSON: status ${status}: ${text.slice(0, 300)}`;
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return `JSON: body is not JSON: ${text.slice(0, 300)}`;
  }
  if (parsed.choices?.[0]?.message?.content !== JSON_TEXT) return `JSON: unexpected answer ${JSON.stringify(parsed.choices?.[0]?.message?.content)}`;
  if (parsed.usage?.total_tokens !== USAGE.total_tokens) return `JSON: usage lost: ${JSON.stringify(parsed.usage)}`;
  return undefined;
}

function checkStream({ status, headers, text }) {
  if (status !== 200) return `SSE: status ${status}: ${text.slice(0, 300)}`;
  if (!String(headers['content-type']).startsWith('text/event-stream')) return `SSE: content-type ${headers['content-type']}`;
  const data = text
    .split(/\r?\n\r?\n/)
    .flatMap((event) => event.split(/\r?\n/).filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trim()))
    .filter((line) => line.length > 0);
  if (data.at(-1) !== '[DONE]') return `SSE: the stream does not end with [DONE]: ${JSON.stringify(text.slice(-200))}`;
  let content = '';
  let usage;
  for (const line of data.slice(0, -1)) {
    const event = JSON.parse(line);
    content += event.choices?.[0]?.delta?.content ?? '';
    if (event.usage) usage = event.usage;
  }
  if (content !== STREAM_TEXT) return `SSE: unexpected text ${JSON.stringify(content)}`;
  if (usage?.total_tokens !== USAGE.total_tokens) return `SSE: usage event lost: ${JSON.stringify(usage)}`;
  return undefined;
}

/** One JSON and one streamed request; returns the problems found (empty when the target is correct). */
export async function checkTarget(target, upstream) {
  const before = await upstreamStats(upstream);
  const problems = [];
  try {
    const json = checkJson(await post(target, false));
    if (json) problems.push(json);
    const sse = checkStream(await post(target, true));
    if (sse) problems.push(sse);
  } catch (error) {
    problems.push(`request failed: ${error.message}`);
  }
  const after = await upstreamStats(upstream);
  const seen = (key) => (after.byKey[key] ?? 0) - (before.byKey[key] ?? 0);
  if (seen(target.upstreamKey) !== 2) {
    const keys = Object.keys(after.byKey).filter((key) => seen(key) > 0);
    problems.push(`the upstream saw ${seen(target.upstreamKey)} of 2 requests with ${target.upstreamKey}; keys it saw: ${keys.join(', ') || 'none'}`);
  }
  if (target.clientKey !== target.upstreamKey && seen(target.clientKey) > 0) problems.push(`the caller's key ${target.clientKey} reached the upstream`);
  return problems;
}
