#!/usr/bin/env node
// chartlake's Google Play fetch: prints one chart as google-play-scraper's list() JSON array on stdout, nothing else.
//
//   node list.js --collection TOP_FREE --country us --lang en --num 200 [--category GAME] [--timeout-ms 30000]
//
// stdout is the payload chartlake stores (format google-play-list), so it carries only the array. Everything about
// the HTTP exchange goes to stderr as one line `chartlake-play-result {json}` (status, final URL, content type,
// error), which orchestration/sources/play_feed.py reads; the rest of stderr is for people.
//
// CHARTLAKE_PLAY_BASE_URL (e.g. http://127.0.0.1:8123) sends the library's request there instead of
// https://play.google.com, path and query unchanged: the offline tests serve a batchexecute answer from a local
// server through it. It is applied in got's beforeRequest hook (the library passes requestOptions to got), so the
// request itself, its body and the response parsing are the library's own.
//
// Exit codes: 0 the array was printed; 2 bad arguments; 3 the request failed (network, timeout, HTTP error);
// 4 the answer was not what list() parses (Google changed the endpoint, or an HTML page came back).
import { parseArgs } from 'node:util';
import gplay from 'google-play-scraper';

const RESULT_MARK = 'chartlake-play-result';
const exchange = { status: null, url: null, content_type: null };

function report (fields) {
  process.stderr.write(`${RESULT_MARK} ${JSON.stringify({ ...exchange, ...fields })}\n`);
}

function fail (code, kind, message) {
  report({ ok: false, kind, error: message });
  process.exitCode = code;
}

function parse () {
  const { values } = parseArgs({
    options: {
      collection: { type: 'string' },
      category: { type: 'string' },
      country: { type: 'string' },
      lang: { type: 'string', default: 'en' },
      num: { type: 'string' },
      'timeout-ms': { type: 'string', default: '30000' }
    },
    strict: true,
    allowPositionals: false
  });
  const problems = [];
  if (!Object.values(gplay.collection).includes(values.collection)) {
    problems.push(`--collection must be one of ${Object.values(gplay.collection).join(', ')}, got ${values.collection}`);
  }
  if (values.category !== undefined && !Object.values(gplay.category).includes(values.category)) {
    problems.push(`--category ${values.category} is not a google-play-scraper category`);
  }
  if (!/^[a-z]{2}$/.test(values.country || '')) {
    problems.push(`--country must be an ISO 3166-1 alpha-2 code in lower case, got ${values.country}`);
  }
  if (!/^[a-z]{2}(-[A-Za-z]{2,4})?$/.test(values.lang)) {
    problems.push(`--lang must be a language code such as en or pt-BR, got ${values.lang}`);
  }
  const num = Number(values.num);
  if (!Number.isInteger(num) || num < 1 || num > 200) {
    problems.push(`--num must be an integer from 1 to 200 (list() reads at most 200), got ${values.num}`);
  }
  const timeoutMs = Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    problems.push(`--timeout-ms must be a positive integer, got ${values['timeout-ms']}`);
  }
  if (problems.length) throw new UsageError(problems.join('; '));
  return { ...values, num, timeoutMs };
}

class UsageError extends Error {}

function baseUrlHook () {
  const raw = process.env.CHARTLAKE_PLAY_BASE_URL;
  if (!raw) return [];
  let base;
  try {
    base = new URL(raw);
  } catch {
    throw new UsageError(`CHARTLAKE_PLAY_BASE_URL is not a URL: ${raw}`);
  }
  if (!['http:', 'https:'].includes(base.protocol)) {
    throw new UsageError(`CHARTLAKE_PLAY_BASE_URL must be an http(s) URL, got ${raw}`);
  }
  const prefix = base.pathname.replace(/\/+$/, '');
  return [(options) => {
    const original = new URL(options.url);
    options.url = new URL(`${prefix}${original.pathname}${original.search}`, base.origin);
  }];
}

async function main () {
  let args, beforeRequest;
  try {
    args = parse();
    beforeRequest = baseUrlHook();
  } catch (error) {
    fail(2, 'usage', error.message);
    return;
  }
  const requestOptions = {
    timeout: { request: args.timeoutMs },
    retry: 0, // chartlake decides about retries; one attempt per run keeps the schedule's load on Google small
    hooks: {
      beforeRequest,
      afterResponse: [(response) => {
        exchange.status = response.statusCode;
        exchange.url = response.url;
        exchange.content_type = response.headers['content-type'] || null;
        return response;
      }]
    }
  };
  const opts = { collection: args.collection, country: args.country, lang: args.lang, num: args.num, requestOptions };
  if (args.category !== undefined) opts.category = args.category;
  let apps;
  try {
    apps = await gplay.list(opts);
  } catch (error) {
    // The library turns got's errors into "Error requesting Google Play:..." with .status; anything else is its
    // parsing of the answer (JSON.parse of the batchexecute lines, paths into the nested arrays) giving up.
    const requestFailed = typeof error.message === 'string' && error.message.startsWith('Error requesting Google Play');
    if (requestFailed) {
      fail(3, 'request', error.message);
    } else {
      fail(4, 'format', `list() could not read the answer (${error.name}: ${error.message})`);
    }
    return;
  }
  if (!Array.isArray(apps)) {
    fail(4, 'format', `list() returned a ${apps === null ? 'null' : typeof apps}, not an array`);
    return;
  }
  // Not process.exit(): stdout is a pipe and must drain first.
  process.stdout.write(JSON.stringify(apps));
  report({ ok: true, kind: null, error: null, entries: apps.length });
}

main();
