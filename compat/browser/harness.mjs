// Harness of the browser suite: starts the Bayou test server (one per case,
// with --log-level debug so that it logs the transport of every request),
// serves the test pages from a second origin, and drives headless Chromium
// through playwright-core with the system browser (/usr/bin/chromium).
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { readFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

export const FAYE_BUNDLE = path.join(here, 'node_modules/faye/client/faye-browser-min.js');
export const SCREENSHOTS = path.join(here, 'screenshots');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TESTSERVER = process.env.BAYOU_TESTSERVER || path.join(root, 'bin/testserver');
const CHAT = process.env.BAYOU_CHAT || path.join(root, 'bin/chat');
const BAYOU = process.env.BAYOU_BIN || path.join(root, 'bin/bayou');
const VERBOSE = !!process.env.COMPAT_VERBOSE;

// Exactly the flags the suite promises; Playwright adds its own on top
// (among them a fresh temporary --user-data-dir per launch).
export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// withTimeout rejects if promise does not settle within ms.
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

// waitUntil polls fn until it returns a truthy value.
export async function waitUntil(fn, ms, what, every = 25) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

// parseLogLine reads one slog text line (key=value, values optionally quoted).
export function parseLogLine(line) {
  const out = {};
  const re = /([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|\S*)/g;
  let m;
  while ((m = re.exec(line))) {
    let v = m[2];
    if (v.startsWith('"')) {
      try { v = JSON.parse(v); } catch { v = v.slice(1, -1); }
    }
    out[m[1]] = v;
  }
  return out;
}

// spawnServer starts a binary that prints `<banner> <URL>` on stdout and
// waits (10 s max) for that line. Its stderr lines are kept.
async function spawnServer(bin, args, banner, name) {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run compat/browser/run.sh (it builds it)`);
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let errBuf = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk) => {
    errBuf += chunk;
    let i;
    while ((i = errBuf.indexOf('\n')) >= 0) {
      const line = errBuf.slice(0, i);
      errBuf = errBuf.slice(i + 1);
      lines.push(line);
      if (VERBOSE) process.stderr.write(`[${name}] ${line}\n`);
    }
  });
  let exited = null;
  const exit = new Promise((resolve) => proc.on('exit', (code, sig) => { exited = { code, sig }; resolve(exited); }));
  let out = '';
  const url = await withTimeout(new Promise((resolve, reject) => {
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(new RegExp(`${banner} (https?://\\S+)`));
      if (m) resolve(m[1]);
    });
    exit.then((e) => reject(new Error(`${name} exited (${JSON.stringify(e)}) before listening:\n${lines.join('\n')}`)));
  }), 10_000, `${name} to print its URL`).catch((e) => { proc.kill('SIGKILL'); throw e; });
  return {
    url,
    proc,
    lines,
    // stdout returns what the server printed on stdout so far (its
    // "serving ... at URL" lines).
    stdout: () => out,
    async stop() {
      if (exited) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exit;
      clearTimeout(t);
    },
  };
}

// startBayou starts compat/testserver (Bayou as a library plus
// /service/echo) on a free port. The returned object reads the server's own
// view of the requests from its debug log.
export async function startBayou({ timeout = 3, clientJs = FAYE_BUNDLE } = {}) {
  const args = ['--addr', '127.0.0.1:0', '--mount', '/bayeux', '--timeout', String(timeout), '--log-level', 'debug'];
  if (clientJs) args.push('--client-js', clientJs);
  const s = await spawnServer(TESTSERVER, args, 'testserver serving Bayeux at', 'bayou');
  const u = new URL(s.url);
  return {
    ...s,
    origin: u.origin,
    // requests returns the requests the server logged (from line offset `from`).
    requests(from = 0) {
      return s.lines.slice(from)
        .map(parseLogLine)
        .filter((r) => r.msg === 'request')
        .map(({ transport, method, path, origin }) => ({ transport, method, path, origin }));
    },
    mark() { return s.lines.length; },
    transports(from = 0) { return [...new Set(this.requests(from).map((r) => r.transport))].sort(); },
  };
}

// startBayouBinary starts the bayou command itself (BAYOU_BIN, default
// bin/bayou, which run.sh builds) on a free port, serving the faye bundle,
// with extra flags (such as --history) for what the test server lacks.
export async function startBayouBinary({ timeout = 3, args = [] } = {}) {
  const a = ['--addr', '127.0.0.1:0', '--mount', '/bayeux', '--timeout', String(timeout), '--client-js', FAYE_BUNDLE, ...args];
  const s = await spawnServer(BAYOU, a, 'serving Bayeux at', 'bayou');
  const u = new URL(s.url);
  return { ...s, origin: u.origin, port: Number(u.port), mark: () => s.lines.length };
}

// startChat starts the examples/chat binary on a free port, with extra
// flags (such as -redis).
export async function startChat({ args = [], name = 'chat' } = {}) {
  return spawnServer(CHAT, ['-addr', '127.0.0.1:0', '-client-js', FAYE_BUNDLE, '-debug', ...args], 'chat serving at', name);
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json' };

// renderPage reads pages/<name> and fills {{KEY}} placeholders.
export async function renderPage(name, vars) {
  let html = await readFile(path.join(here, 'pages', name), 'utf8');
  for (const [k, v] of Object.entries(vars)) html = html.replaceAll(`{{${k}}}`, v);
  if (/\{\{[A-Z_]+\}\}/.test(html)) throw new Error(`unfilled placeholder in ${name}`);
  return html;
}

// startStatic serves the test pages and the npm clients' files from a
// second origin: /pages/<name>?bayeux=<url> renders pages/<name>, and
// /npm/<package>/<file> serves node_modules/<package>/<file> for faye and
// cometd (with CORS, so that a page on Bayou's origin can import the CometD
// modules from here).
export async function startStatic() {
  let origin;
  const server = createServer(async (req, res) => {
    const u = new URL(req.url, 'http://x');
    try {
      let body, type;
      const page = u.pathname.match(/^\/pages\/([\w-]+\.html)$/);
      const npm = u.pathname.match(/^\/npm\/(faye|cometd)\/([\w./-]+)$/);
      if (page) {
        body = await renderPage(page[1], pageVars(u.searchParams.get('bayeux'), origin, origin));
        type = TYPES['.html'];
      } else if (npm && !npm[2].includes('..')) {
        body = await readFile(path.join(here, 'node_modules', npm[1], npm[2]));
        type = TYPES[path.extname(npm[2])] || 'application/octet-stream';
      } else {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Access-Control-Allow-Origin': '*' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

// pageVars are the placeholders of the test pages. A page on Bayou's
// origin loads faye from <mount>/client.js (a same-origin path); a page on
// the static origin loads it from Bayou's <mount>.js. The CometD modules
// always come from the static origin.
export function pageVars(bayeuxURL, pageOrigin, staticOrigin) {
  const sameOrigin = new URL(bayeuxURL).origin === pageOrigin;
  const mount = new URL(bayeuxURL).pathname;
  return {
    BAYEUX_URL: bayeuxURL,
    FAYE_SCRIPT: sameOrigin ? `${mount}/client.js` : `${bayeuxURL}.js`,
    STATIC_ORIGIN: staticOrigin,
  };
}

// launchBrowser starts headless Chromium from Debian's package.
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run compat/browser/run.sh (it installs Debian's chromium)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: 30_000 });
}

// openPage opens pages/<name> in a fresh browser context (made with
// contextOptions, such as ignoreHTTPSErrors), either from the static
// origin (cross-origin to Bayou) or from Bayou's own origin.
//
// Bayou (the test server) serves only its mount, so a same-origin page is
// made this way: the tab first navigates to Bayou's <mount>.js (a real
// response from Bayou, so the document has Bayou's origin and address
// space), then the page's HTML replaces that document (page.setContent,
// i.e. document.open/write/close: origin and URL are kept). Everything the
// page then does, from loading <mount>/client.js on, goes to the real
// server. (Answering the page URL with page.route/fulfill does not do: the
// synthetic response has no address space, and Chromium's Local Network
// Access checks then block the WebSocket to 127.0.0.1.)
export async function openPage(browser, { bayou, web, name, sameOrigin, contextOptions = {} }) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    // Failed loads are reported below with their URL (the console line has
    // none, and the browser's own /favicon.ico probe is not the page's).
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
    if (VERBOSE) process.stderr.write(`[page] ${m.type()}: ${m.text()}\n`);
  });
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`); });
  page.on('requestfailed', (r) => {
    // A request cut by the page's own navigation (reload) is not an error.
    if (!/ERR_ABORTED/.test(r.failure()?.errorText || '')) errors.push(`failed ${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
  });
  const bayeuxURL = bayou.url;
  let mark = 0;
  const load = async (how) => {
    if (sameOrigin) {
      const html = await renderPage(name, pageVars(bayeuxURL, bayou.origin, web.origin));
      const res = await page.goto(`${bayeuxURL}.js`, { timeout: 10_000 });
      if (res.status() !== 200) throw new Error(`GET ${bayeuxURL}.js: ${res.status()}`);
      mark = bayou.mark(); // the page's own requests start here
      await page.setContent(html, { timeout: 10_000 });
    } else {
      const url = `${web.origin}/pages/${name}?bayeux=${encodeURIComponent(bayeuxURL)}`;
      mark = bayou.mark();
      await (how === 'reload' ? page.reload({ timeout: 10_000 }) : page.goto(url, { timeout: 10_000 }));
    }
    await page.waitForFunction(() => window.pageReady === true, null, { timeout: 10_000 });
  };
  await load('goto');
  return {
    page,
    context,
    errors,
    origin: () => page.evaluate(() => location.origin),
    // mark is the server log offset where this page's requests start.
    get mark() { return mark; },
    // reload reloads the page (a real reload for a page of the static
    // origin; for a same-origin page the same navigation as at first).
    reload: () => load('reload'),
    close: () => context.close(),
  };
}

// Unicode that must survive every transport: accents, an emoji (a
// surrogate pair), the JS line separators U+2028/U+2029 (which break naive
// JSONP), quotes, a backslash and markup.
export const UNICODE = 'é ü 中文 😀👍🏽 \u2028 \u2029 "q" \\ </script><b>&amp;';

export async function screenshotsDir() {
  await mkdir(SCREENSHOTS, { recursive: true });
  return SCREENSHOTS;
}

// summary collects one line per case, printed at the end of each file.
const rows = [];
export function record(name, ms, transports, extra = '') {
  rows.push({ name, ms, transports, extra });
}
export function printSummary(title) {
  if (!rows.length) return;
  const w = Math.max(...rows.map((r) => r.name.length));
  const lines = rows.map((r) => `${r.name.padEnd(w)}  ${String(r.ms).padStart(5)} ms  ${r.transports.join(', ')}${r.extra ? '  ' + r.extra : ''}`);
  process.stdout.write(`\n${title}: server's view of each case\n${lines.join('\n')}\n`);
}
