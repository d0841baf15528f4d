// The snippets of README.md and examples/*/README.md, run as written
// against a live bayou: each fenced block that can run here is extracted
// from the Markdown at test time and executed, and what it prints is
// compared with what the README says it prints.
//
// What is substituted, and nothing else:
//   - the address: http://127.0.0.1:8000 (and the API's :8001) become the
//     test server's free ports; server command lines (`bayou ...`,
//     `go run ./cmd/bayou ...`, `go run ./examples/auth ...`) get an `--addr`
//     (`-addr`) on a free port appended, and run the bayou binary of
//     BAYOU_BIN or the example built here with `go build`;
//   - in the HTTP API block, the stand-in client id 3kd8c7jq1x becomes the id
//     of a real client; in the auth example, TOKEN = '...' becomes a token of
//     the example (`-print-token u1`);
//   - `npm install faye@1.4.3` is answered by a stub: the snippets use the
//     pinned packages of compat/node/node_modules (linked into their working
//     directory), and no registry is contacted.
//
// Conventions in the Markdown (invisible once rendered):
//   - a line comment `// prints: X` (JavaScript) or `# ... prints: X` (shell)
//     names a line the snippet must print; `# {...}` / `# [...]` lines after
//     a shell command are the JSON it prints (ids and epochs normalised);
//   - `<!-- snippet: NAME -->` just before a block names the setup it needs:
//       commands       each command line starts a server (or prints and exits)
//       acl-config     a --config file for bayou
//       auth-config    a shell script that writes bayou.json and starts bayou
//       auth-example   the faye client of examples/auth (its server and token)
//       anonymous-publish, http-api, recovery-node: the curl / Node blocks
//       presence-js    a faye block run against bayou --presence '/chat/*'
//       publisher-*    the commands of examples/publisher, run in turn
//                      (its Go commands and examples/auth are built with go)
//       notify         examples/notify's, run by guide.test.mjs
//     ```js blocks without a name run against a plain bayou.
// Blocks not run: Go fragments (they contain `...`), the HTML page, the
// commands that install (`make build`, `go install`, `npm ci`), need Redis
// on another host, or drive a browser (the browser suite runs examples/chat).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as h from '../harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const NODE_DIR = path.resolve(HERE, '..'); // compat/node
const ROOT = path.resolve(NODE_DIR, '../..');
const DOC_ORIGIN = 'http://127.0.0.1:8000';
const DOC_API_ORIGIN = 'http://127.0.0.1:8001';
const DOC_CLIENT_ID = '3kd8c7jq1x';
const WAIT_MS = 15_000; // for any output a snippet must print
const skip = h.isBayou ? false : 'Bayou-only: the snippets document Bayou';
const BAYOU_BIN = process.env.BAYOU_BIN ? path.resolve(NODE_DIR, process.env.BAYOU_BIN) : '';
const SECRET = 'snippet-test-secret'; // $SECRET in the READMEs
const KEY = 'snippet-test-key'; // $KEY in the READMEs

// ---------------------------------------------------------------------------
// Extraction

/** The fenced blocks of a Markdown file: {file, line, lang, name, code}. */
export function blocksOf(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out = [];
  let name = null;
  for (let i = 0; i < lines.length; i++) {
    const marker = /^<!--\s*snippet:\s*([\w-]+)\s*-->$/.exec(lines[i].trim());
    if (marker) { name = marker[1]; continue; }
    const fence = /^```(\w*)\s*$/.exec(lines[i]);
    if (fence) {
      let end = i + 1;
      while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
      out.push({ file: path.relative(ROOT, file), line: i + 1, lang: fence[1], name,
        code: lines.slice(i + 1, end).join('\n') + '\n' });
      i = end;
    }
    if (lines[i] !== undefined && lines[i].trim() !== '') name = null;
  }
  return out;
}

const DOCS = ['README.md', ...fs.readdirSync(path.join(ROOT, 'examples'))
  .map((d) => path.join('examples', d, 'README.md'))
  .filter((f) => fs.existsSync(path.join(ROOT, f)))];
const ALL = DOCS.flatMap((f) => blocksOf(path.join(ROOT, f)));
const PUBLISHER = ['publisher-server', 'publisher-listen', 'publisher-publish', 'publisher-output', 'publisher-json',
  'publisher-stream', 'publisher-error'];
// notify: the blocks of examples/notify/README.md, which guide.test.mjs runs.
const KNOWN = new Set(['commands', 'acl-config', 'auth-config', 'auth-example', 'anonymous-publish', 'http-api',
  'recovery-node', 'presence-js', 'notify', ...PUBLISHER]);
const named = (name) => ALL.filter((b) => b.name === name);
const label = (b) => `${b.file}:${b.line} ${b.lang}${b.name ? ` (${b.name})` : ''}`;

/** The lines a block says it prints: `// prints: X` or `# ... prints: X`. */
function printsOf(code) {
  return code.split('\n').map((l) => /(?:\/\/|#)[^\n]*?\bprints:\s*(.+?)\s*$/.exec(l)).filter(Boolean).map((m) => m[1]);
}

/** Shell commands of a block, one per line (continuations joined), with the `# {..}` output shown after each. */
function shellSteps(code) {
  const steps = [];
  let cur = null;
  let cont = false;
  for (const line of code.split('\n')) {
    if (cont) { cur.cmd += `\n${line}`; cont = /\\$/.test(line); continue; }
    if (/^\s*#/.test(line)) {
      const comment = line.replace(/^\s*#\s?/, '');
      if (cur) cur.comments.push(comment);
      if (cur && /^[[{]/.test(comment)) cur.output.push(comment);
      continue;
    }
    if (line.trim() === '') continue;
    cur = { cmd: line, output: [], comments: [] };
    steps.push(cur);
    cont = /\\$/.test(line);
  }
  return steps;
}

const outputLines = (text) => text.split('\n').map((l) => l.trim()).filter(Boolean);
/**
 * A line shown in a comment as a pattern: the documented address becomes the
 * test's, and a word ending in "..." (an elided id) matches anything.
 */
function shownLine(text, origin) {
  const escaped = text.replaceAll(DOC_ORIGIN, origin).split(/\S*\.\.\./)
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${escaped}$`);
}

/** Asserts that every comment line shown after a command appears in its output. */
function assertShown(step, run, origin) {
  const lines = outputLines(`${run.stdout}\n${run.stderr}`);
  for (const c of step.comments) {
    const re = shownLine(c.trim(), origin);
    assert.ok(lines.some((l) => re.test(l)), `${step.cmd}: no output line matches "# ${c}"\n${run.describe()}`);
  }
}

/** Random parts of API answers: epochs. */
const normalise = (line) => line.replace(/"epoch":"[^"]*"/g, '"epoch":"<epoch>"');

// ---------------------------------------------------------------------------
// Processes and working directories (all removed after the file)

const running = new Set();
const tmpDirs = [];
process.on('exit', () => {
  for (const r of running) { try { process.kill(-r.child.pid, 'SIGKILL'); } catch { /* gone */ } }
});
after(async () => {
  await Promise.all([...running].map((r) => r.stop()));
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh directory with compat/node's node_modules linked in (and a stub npm on PATH). */
function workDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bayou-snippet-'));
  tmpDirs.push(dir);
  fs.symlinkSync(path.join(NODE_DIR, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const bin = path.join(dir, '.bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'npm'), [
    '#!/bin/sh',
    '# Stand-in for npm in the snippets: the pinned packages are already linked here.',
    'if [ "$1" = install ] && [ "$2" = faye@1.4.3 ] && [ $# -eq 2 ] && [ -d node_modules/faye ]; then exit 0; fi',
    'echo "snippet test: no stand-in for: npm $*" >&2; exit 127', ''].join('\n'), { mode: 0o755 });
  return dir;
}

/** Starts a process in its own process group; collects its output. */
function launch(cmd, args, { cwd, env = {} } = {}) {
  const child = spawn(cmd, args, {
    cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: `${cwd ? path.join(cwd, '.bin') + ':' : ''}${path.dirname(process.execPath)}:${process.env.PATH}`, ...env },
  });
  const run = { child, stdout: '', stderr: '', exit: null };
  running.add(run);
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (c) => { run.stdout += c; });
  child.stderr.on('data', (c) => { run.stderr += c; });
  child.on('error', (e) => { run.stderr += `\n[spawn error] ${e.message}`; });
  run.exited = new Promise((resolve) => child.once('close', (code, signal) => {
    run.exit = { code, signal };
    running.delete(run);
    resolve(run.exit);
  }));
  run.describe = () => `exit: ${run.exit ? h.short(run.exit) : 'still running'}\n--- stdout ---\n` +
    `${run.stdout.slice(-3000)}\n--- stderr ---\n${run.stderr.slice(-3000)}`;
  run.stop = async () => {
    if (run.exit) return;
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    await h.settle(run.exited, 5000, 'snippet process exit');
  };
  return run;
}

/** Waits until pred(run) holds; fails at once if the process exits first (unless exitOk). */
async function waitRun(run, pred, what, { ms = WAIT_MS, exitOk = false } = {}) {
  await h.waitUntil(() => {
    if (pred(run)) return true;
    if (run.exit && !exitOk) throw new Error(`snippet exited before ${what}\n${run.describe()}`);
    return false;
  }, ms, () => `${what}\n${run.describe()}`);
}

/** Waits for the process to exit; returns its exit. */
async function finish(run, what, ms = WAIT_MS) {
  const r = await h.settle(run.exited, ms, what);
  if (!r.ok) { await run.stop(); throw new Error(`${what}: still running after ${ms} ms\n${run.describe()}`); }
  return r.value;
}

/** Runs a JavaScript block with node (as ESM if it imports, else CommonJS) in a fresh directory. */
function runJs(block, replacements) {
  let code = block.code;
  for (const [from, to] of replacements) code = code.replaceAll(from, to);
  const dir = workDir();
  const file = path.join(dir, /^\s*import\s/m.test(code) ? 'snippet.mjs' : 'snippet.cjs');
  fs.writeFileSync(file, code);
  return launch(process.execPath, [file], { cwd: dir });
}

/** Stand-ins for the server commands of the READMEs; SNIPPET_PORT is the port to use. */
const PRELUDE = `
go() {
  case "$1 $2" in
    "run ./cmd/bayou") shift 2; exec "$BAYOU_BIN" "$@" --addr "127.0.0.1:$SNIPPET_PORT" ;;
    "run ./examples/auth")
      [ -n "$AUTH_EXAMPLE_BIN" ] || { echo "snippet test: examples/auth was not built" >&2; return 127; }
      shift 2; exec "$AUTH_EXAMPLE_BIN" "$@" -addr "127.0.0.1:$SNIPPET_PORT" ;;
    "run ./examples/publisher/cmd/listen") shift 2; exec "$LISTEN_BIN" -url "$SNIPPET_URL" "$@" ;;
    "run ./examples/publisher/cmd/publish") shift 2; exec "$PUBLISH_BIN" -url "$SNIPPET_URL" "$@" ;;
  esac
  echo "snippet test: no stand-in for: go $*" >&2; return 127
}
bayou() { exec "$BAYOU_BIN" "$@" --addr "127.0.0.1:$SNIPPET_PORT"; }
`;

/** Runs shell code with bash in dir (a fresh one by default). */
function runShell(code, { dir = workDir(), env = {} } = {}) {
  return launch('bash', ['-c', `${PRELUDE}\n${code}`], {
    cwd: dir, env: { BAYOU_BIN, SECRET, KEY, AUTH_EXAMPLE_BIN: built.get('./examples/auth') || '',
      LISTEN_BIN: built.get('./examples/publisher/cmd/listen') || '',
      PUBLISH_BIN: built.get('./examples/publisher/cmd/publish') || '', ...env },
  });
}

const SERVING = /serving Bayeux at (\S+)/;

/** Runs a server command; resolves {run, url} once it serves, or {run, exit} if it ended by itself. */
async function startCommand(code, opts = {}) {
  const port = await h.freePort();
  const run = runShell(code, { ...opts, env: { SNIPPET_PORT: String(port), ...(opts.env || {}) } });
  await waitRun(run, (r) => SERVING.test(r.stdout) || r.exit, 'the command to serve Bayeux or exit', { exitOk: true });
  const m = SERVING.exec(run.stdout);
  if (m) {
    assert.equal(m[1], `http://127.0.0.1:${port}/bayeux`, `the URL it prints\n${run.describe()}`);
    return { run, url: m[1], port };
  }
  await run.exited;
  return { run, exit: run.exit };
}

// ---------------------------------------------------------------------------
// The example commands, built once with go (when go is on PATH)

const built = new Map(); // package -> binary
const builds = new Map(); // package -> promise of the binary (null: no go)
/** Builds a main package of the repository; resolves its path, or null if go is missing. */
function buildExample(pkg) {
  if (!builds.has(pkg)) {
    builds.set(pkg, (async () => {
      const goOnPath = process.env.PATH.split(':').some((d) => d && fs.existsSync(path.join(d, 'go')));
      if (!goOnPath) return null;
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bayou-snippet-bin-'));
      tmpDirs.push(dir);
      const out = path.join(dir, path.basename(pkg));
      const b = launch('go', ['build', '-o', out, pkg], { cwd: ROOT });
      const exit = await finish(b, `go build ${pkg}`, 240_000);
      assert.equal(exit.code, 0, `go build ${pkg} failed\n${b.describe()}`);
      built.set(pkg, out);
      return out;
    })());
  }
  return builds.get(pkg);
}
const buildAuthExample = () => buildExample('./examples/auth');

/** An HS256 token like the example's Token(): {"sub", "iat", "exp"}, for when go is missing. */
async function demoToken(user) {
  const bin = await buildAuthExample();
  if (bin) {
    const run = launch(bin, ['-print-token', user]);
    const exit = await finish(run, 'auth example -print-token');
    assert.equal(exit.code, 0, run.describe());
    return run.stdout.trim();
  }
  const { createHmac } = await import('node:crypto');
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: user, iat: now, exp: now + 3600 })}`;
  return `${body}.${createHmac('sha256', 'bayou-demo-secret').update(body).digest('base64url')}`;
}

// ---------------------------------------------------------------------------

describe('README snippets', { skip }, () => {
  it('are all found, and every block that needs a setup names a known one', () => {
    const js = ALL.filter((b) => b.lang === 'js');
    assert.ok(js.length >= 3, `expected the faye, CometD and auth-example JavaScript blocks, found ${js.map(label)}`);
    for (const b of ALL) {
      if (b.name) assert.ok(KNOWN.has(b.name), `${label(b)}: unknown <!-- snippet: ${b.name} -->`);
    }
    for (const b of js) {
      assert.ok(b.name === null || b.name === 'auth-example' || b.name === 'presence-js', `${label(b)}: no test runs this setup`);
      assert.ok(printsOf(b.code).length > 0, `${label(b)}: say what it prints with // prints: ...`);
      assert.ok(b.code.includes(DOC_ORIGIN), `${label(b)}: expected the URL ${DOC_ORIGIN}/bayeux`);
    }
    for (const b of ALL.filter((x) => x.lang === 'sh' && /\bcurl\b/.test(x.code))) {
      assert.ok(b.name, `${label(b)}: a block with curl should be run: mark it with <!-- snippet: NAME -->`);
    }
    for (const name of KNOWN) assert.ok(named(name).length > 0, `no block is marked ${name}`);
  });

  it('README "Run it": `make build` writes bin/bayou, `go install` names this module\'s command', () => {
    const run = ALL.find((b) => b.file === 'README.md' && /^make build\b/m.test(b.code));
    assert.ok(run, 'README.md shows `make build`');
    const makefile = fs.readFileSync(path.join(ROOT, 'Makefile'), 'utf8');
    assert.match(makefile, /^build:\n\tgo build -buildvcs=auto -o bin\/bayou \.\/cmd\/bayou$/m, 'the Makefile\'s build target');
    const mod = /^module (\S+)$/m.exec(fs.readFileSync(path.join(ROOT, 'go.mod'), 'utf8'))[1];
    assert.match(run.code, new RegExp(`^go install ${mod.replaceAll('.', '\\.')}/cmd/bayou@latest\\b`, 'm'),
      `go install of ${mod}/cmd/bayou`);
    assert.ok(fs.existsSync(path.join(ROOT, 'cmd/bayou/main.go')));
  });

  for (const block of ALL.filter((b) => b.lang === 'js' && b.name === null)) {
    it(`${label(block)} prints what it says against bayou`, { timeout: 30_000 }, async () => {
      const server = await h.startServer();
      try {
        const run = runJs(block, [[DOC_ORIGIN, `http://127.0.0.1:${server.port}`]]);
        for (const line of printsOf(block.code)) {
          await waitRun(run, (r) => outputLines(r.stdout).includes(line), `the snippet to print: ${line}`);
        }
        await run.stop();
      } finally {
        await server.stop();
      }
    });
  }

  for (const block of named('presence-js')) {
    it(`${label(block)} prints what it says against bayou --presence '/chat/*'`, { timeout: 30_000 }, async () => {
      const server = await h.startServer({ args: ['--presence', '/chat/*'] });
      try {
        const run = runJs(block, [[DOC_ORIGIN, `http://127.0.0.1:${server.port}`]]);
        for (const line of printsOf(block.code)) {
          await waitRun(run, (r) => outputLines(r.stdout).includes(line), `the snippet to print: ${line}`);
        }
        await run.stop();
      } finally {
        await server.stop();
      }
    });
  }

  for (const block of named('anonymous-publish')) {
    it(`${label(block)}: curl publishes, a subscriber receives it, curl prints the reply shown`, { timeout: 30_000 }, async () => {
      const server = await h.startServer();
      const sub = h.fayeClient(server.url, {});
      try {
        const { inbox } = await h.fayeSubscribe(sub, '/chat/*');
        const steps = shellSteps(block.code);
        const run = runShell(block.code.replaceAll(DOC_ORIGIN, `http://127.0.0.1:${server.port}`));
        const exit = await finish(run, 'the curl block');
        assert.equal(exit.code, 0, run.describe());
        assert.deepEqual(outputLines(run.stdout), steps.flatMap((s) => s.output), run.describe());
        const data = JSON.parse(/-d '([^']*)'/.exec(block.code)[1]).data;
        await inbox.waitFor((m) => h.short(m.data) === h.short(data), 5000, `a subscriber to /chat/* to receive ${h.short(data)}`);
      } finally {
        await h.destroyFayeClient(sub);
        await server.stop();
      }
    });
  }

  for (const block of named('http-api')) {
    it(`${label(block)}: every curl prints the answer shown`, { timeout: 40_000 }, async () => {
      const apiPort = await h.freePort();
      const server = await h.startServer({ timeout: 10, args: ['--history', '/chat/**=100:10m',
        '--api-addr', `127.0.0.1:${apiPort}`, '--api-key', KEY] });
      const y = h.fayeClient(server.url, {});
      const z = h.fayeClient(server.url, {});
      try {
        await h.waitUntil(() => /serving the HTTP API at/.test(server.logs()), 5000, 'the HTTP API to listen');
        // The clients the block's answers assume: 3kd8c7jq1x (subscribed to
        // /chat/room1, then disconnected by the block, so a plain Bayeux
        // session that does not come back), and after it two subscribers to
        // /chat/room1, one of them also to /chat/*.
        const hs = await h.rawPost(server.url, [{ channel: '/meta/handshake', version: '1.0',
          supportedConnectionTypes: ['long-polling'] }]);
        const victim = hs.json && hs.json[0] && hs.json[0].clientId;
        assert.ok(victim, `handshake: ${hs.body}`);
        const sr = await h.rawPost(server.url, [{ channel: '/meta/subscribe', clientId: victim, subscription: '/chat/room1' }]);
        assert.ok(sr.json && sr.json[0].successful, `subscribe: ${sr.body}`);
        const yRoom = (await h.fayeSubscribe(y, '/chat/room1')).inbox;
        const zRoom = (await h.fayeSubscribe(z, '/chat/room1')).inbox;
        await h.fayeSubscribe(z, '/chat/*');

        const code = block.code.replaceAll(DOC_API_ORIGIN, `http://127.0.0.1:${apiPort}`).replaceAll(DOC_CLIENT_ID, victim);
        const run = runShell(code);
        const exit = await finish(run, 'the HTTP API block');
        assert.equal(exit.code, 0, run.describe());
        assert.equal(run.stderr, '', run.describe());
        const want = shellSteps(block.code).flatMap((s) => s.output).map(normalise);
        assert.ok(want.length >= 6, `expected the answers shown in the block, found ${h.short(want)}`);
        assert.deepEqual(outputLines(run.stdout).map(normalise), want, run.describe());
        for (const inbox of [yRoom, zRoom]) {
          await inbox.waitFor((m) => m.data && m.data.text === 'hello', 5000, 'the subscribers of /chat/room1 to receive "hello"');
        }
      } finally {
        await Promise.all([h.destroyFayeClient(y), h.destroyFayeClient(z)]);
        await server.stop();
      }
    });
  }

  for (const block of named('recovery-node')) {
    it(`${label(block)}: fetches recovery.js, subscribes, prints each message`, { timeout: 40_000 }, async () => {
      const server = await h.startServer({ args: ['--history', '/chat/**=100:10m'] });
      try {
        const dir = workDir();
        const run = runShell(block.code.replaceAll(DOC_ORIGIN, `http://127.0.0.1:${server.port}`), { dir });
        const [line] = printsOf(block.code);
        assert.equal(line, "{ text: 'hello' }", 'the block says what a message {"text":"hello"} prints');
        // Publish until the snippet, once subscribed, prints it.
        await h.waitUntil(async () => {
          if (outputLines(run.stdout).includes(line)) return true;
          if (run.exit) throw new Error(`snippet exited\n${run.describe()}`);
          await h.rawPost(server.url, { channel: '/chat/room1', data: { text: 'hello' } });
          return false;
        }, WAIT_MS, () => `the snippet to print ${line}\n${run.describe()}`, 300);
        assert.ok(fs.existsSync(path.join(dir, 'recovery.js')), 'curl -sO saved recovery.js');
        await run.stop();
      } finally {
        await server.stop();
      }
    });
  }

  describe('the faye client of examples/auth', () => {
    const [block] = named('auth-example');
    const check = async (url) => {
      const token = await demoToken('u1');
      assert.ok(/const TOKEN = '\.\.\.';/.test(block.code), 'the snippet has TOKEN = \'...\'');
      const run = runJs(block, [[DOC_ORIGIN, new URL(url).origin], ["const TOKEN = '...';", `const TOKEN = '${token}';`]]);
      for (const line of printsOf(block.code)) {
        await waitRun(run, (r) => outputLines(r.stdout).includes(line), `the snippet to print: ${line}`);
      }
      await run.stop();
    };

    it('against the example server (go run ./examples/auth)', { timeout: 300_000 }, async (t) => {
      if (!await buildAuthExample()) { t.skip('go is not on PATH'); return; }
      const [first] = shellSteps(named('commands').find((b) => b.file.startsWith('examples/auth')).code);
      assert.match(first.cmd, /^go run \.\/examples\/auth\s/);
      const { run, url } = await startCommand(first.cmd);
      try {
        assert.ok(url, `the example did not serve\n${run.describe()}`);
        await check(url);
      } finally {
        await run.stop();
      }
    });

    for (const config of named('auth-config')) {
      it(`against bayou with the config of ${label(config)}`, { timeout: 300_000 }, async () => {
        const { run, url } = await startCommand(config.code);
        try {
          assert.ok(url, `bayou did not serve\n${run.describe()}`);
          await check(url);
        } finally {
          await run.stop();
        }
      });
    }
  });

  for (const block of named('acl-config')) {
    it(`${label(block)} is a config bayou starts with`, { timeout: 30_000 }, async () => {
      const dir = workDir();
      fs.writeFileSync(path.join(dir, 'acl.json'), block.code);
      const { run, url } = await startCommand('bayou --config acl.json', { dir });
      try {
        assert.ok(url, `bayou did not serve\n${run.describe()}`);
      } finally {
        await run.stop();
      }
    });
  }

  for (const block of named('commands')) {
    describe(`${label(block)}: each command serves or exits 0`, () => {
      for (const step of shellSteps(block.code)) {
        it(step.cmd, { timeout: 300_000 }, async (t) => {
          if (/\.\/examples\/auth/.test(step.cmd) && !await buildAuthExample()) { t.skip('go is not on PATH'); return; }
          const { run, url, exit } = await startCommand(step.cmd);
          await run.stop();
          if (!url) {
            assert.equal(exit.code, 0, run.describe());
            assert.ok(run.stdout.trim() !== '', `it printed nothing\n${run.describe()}`);
          }
        });
      }
    });
  }

  describe('examples/publisher: listen and publish against bayou', () => {
    const one = (name) => named(name)[0];
    it('the commands of the README run in turn and print what it shows', { timeout: 300_000 }, async (t) => {
      const bins = await Promise.all(['./examples/publisher/cmd/listen', './examples/publisher/cmd/publish'].map(buildExample));
      if (bins.includes(null)) { t.skip('go is not on PATH'); return; }
      const runs = [];
      try {
        // Terminal 1: the server.
        const [srvStep] = shellSteps(one('publisher-server').code);
        const srv = await startCommand(srvStep.cmd);
        runs.push(srv.run);
        assert.ok(srv.url, `the server did not start\n${srv.run.describe()}`);
        const origin = new URL(srv.url).origin;
        assertShown(srvStep, srv.run, origin);
        const env = { SNIPPET_URL: srv.url };

        // Terminal 2: listen.
        const [listenStep] = shellSteps(one('publisher-listen').code);
        const listen = runShell(listenStep.cmd, { env });
        runs.push(listen);
        await waitRun(listen, (r) => /listening on/.test(r.stderr), 'listen to subscribe');
        assertShown(listenStep, listen, origin);

        // Terminal 3: publish.
        const [pubStep] = shellSteps(one('publisher-publish').code);
        const pub = runShell(pubStep.cmd, { env });
        assert.equal((await finish(pub, pubStep.cmd)).code, 0, pub.describe());
        assertShown(pubStep, pub, origin);

        // What terminal 2 prints.
        const shown = outputLines(one('publisher-output').code);
        await waitRun(listen, (r) => outputLines(r.stdout).length >= shown.length, `listen to print ${shown.length} lines`);
        assert.deepEqual(outputLines(listen.stdout), shown, listen.describe());

        // -json: publish a JSON value; listen -json prints whole messages.
        const [jsonPub, jsonListen] = shellSteps(one('publisher-json').code);
        const jl = runShell(jsonListen.cmd, { env });
        runs.push(jl);
        await waitRun(jl, (r) => /listening on/.test(r.stderr), 'listen -json to subscribe');
        const jp = runShell(jsonPub.cmd, { env });
        assert.equal((await finish(jp, jsonPub.cmd)).code, 0, jp.describe());
        const value = /echo '([^']*)'/.exec(jsonPub.cmd)[1];
        await waitRun(listen, (r) => outputLines(r.stdout).includes(`/chat/room-1 ${value}`),
          `listen to print /chat/room-1 ${value}`);
        await waitRun(jl, (r) => outputLines(r.stdout).length > 0, 'listen -json to print the message');
        const m = JSON.parse(outputLines(jl.stdout)[0]);
        assert.equal(m.channel, '/chat/room-1', jl.describe());
        assert.deepEqual(m.data, JSON.parse(value), jl.describe());

        // A stream of 10,000 messages.
        const [streamStep] = shellSteps(one('publisher-stream').code);
        const st = runShell(streamStep.cmd, { env });
        assert.equal((await finish(st, streamStep.cmd, 120_000)).code, 0, st.describe());
        assert.match(st.stderr, /published 10000 messages to \/numbers/, st.describe());

        // A refused message.
        const [errStep] = shellSteps(one('publisher-error').code);
        const er = runShell(errStep.cmd, { env });
        assert.notEqual((await finish(er, errStep.cmd)).code, 0, er.describe());
        assertShown(errStep, er, origin);
      } finally {
        await Promise.all(runs.map((r) => r.stop()));
      }
    });
  });
});
