// WrenMQ conformance checks from Node: STOMP over WebSocket with @stomp/stompjs (and `ws`),
// the same over TLS (wss://, trusting a test CA; a client without it must be refused),
// STOMP over TCP with @stomp/tcp-wrapper, raw handshake refusals, and the web console driven in
// Chromium by playwright-core with stomp.py on the other end, and the operator console on the
// admin listener.
//
// Usage: node run.mjs --tcp HOST:PORT --ws HOST:PORT [--wss HOST:PORT --ca CA.pem]
//                    [--admin HOST:PORT] [--only NAME,NAME] [--skip-browser]
// --admin is the admin listener (the operator console check needs it).
//   or   WRENMQ_TCP=HOST:PORT WRENMQ_WS=HOST:PORT [WRENMQ_WSS=HOST:PORT WRENMQ_CA=CA.pem] node run.mjs
// The wss checks fail if --wss/--ca are not given (run.sh makes the CA and the TLS acceptor).
// Other env: WRENMQ_PYTHON (python with stomp.py; default python3), WRENMQ_CHROMIUM (default
// /usr/bin/chromium), WRENMQ_ARTIFACTS (screenshot directory; default ../artifacts),
// WRENMQ_BIN (the broker binary: browser-admin-console-actions starts a broker of its own with
// monitor and operator tokens; run.sh sets it).
// The heart-beat check needs the broker's heartbeat send-ms and receive-ms <= 200 on both
// acceptors (run.sh configures that). Prints "N passed, M failed"; exits 1 on any failure.

import { Client } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import WebSocket from 'ws';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomUUID, createHash } from 'node:crypto';
import os from 'node:os';

const here = path.dirname(fileURLToPath(import.meta.url));
const SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];
/** Upper bound on any single wait, so a broken broker fails a check instead of hanging it. */
const WAIT_MS = 10_000;

function parseArgs(argv) {
  const out = { tcp: process.env.WRENMQ_TCP, ws: process.env.WRENMQ_WS, wss: process.env.WRENMQ_WSS, ca: process.env.WRENMQ_CA, admin: process.env.WRENMQ_ADMIN, only: null, skipBrowser: process.env.WRENMQ_SKIP_BROWSER === '1' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--tcp') out.tcp = argv[++i];
    else if (a === '--ws') out.ws = argv[++i];
    else if (a === '--wss') out.wss = argv[++i];
    else if (a === '--ca') out.ca = argv[++i];
    else if (a === '--admin') out.admin = argv[++i];
    else if (a === '--only') out.only = new Set(argv[++i].split(','));
    else if (a === '--skip-browser') out.skipBrowser = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!out.tcp || !out.ws) throw new Error('need --tcp HOST:PORT and --ws HOST:PORT (or WRENMQ_TCP / WRENMQ_WS)');
  const split = (s) => { const i = s.lastIndexOf(':'); return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }; };
  out.tcpAddr = split(out.tcp);
  out.wsAddr = split(out.ws);
  return out;
}

const args = parseArgs(process.argv.slice(2));
const wsUrl = `ws://${args.ws}/stomp`;
const wssUrl = args.wss ? `wss://${args.wss}/stomp` : null;
const unique = () => randomUUID().slice(0, 8);

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every client made by a check, so a failed check still closes its sockets. */
const openClients = new Set();

/**
 * Connects a stompjs client; resolves once CONNECTED arrives. `tls`: over wss://, with `ws`
 * given these TLS options (e.g. `{ ca }`); certificates are always verified.
 */
function connect({ tcp = false, tls = null, debug, tcpAddr = args.tcpAddr, ...options } = {}) {
  const client = new Client({
    webSocketFactory: tcp
      ? () => new TCPWrapper(tcpAddr.host, tcpAddr.port)
      : tls
        ? () => new WebSocket(wssUrl, SUBPROTOCOLS, { ...tls, rejectUnauthorized: true, handshakeTimeout: WAIT_MS })
        : () => new WebSocket(wsUrl, SUBPROTOCOLS),
    connectHeaders: { host: 'localhost' },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    debug: debug || (() => {}),
    ...options,
  });
  openClients.add(client);
  return withTimeout(new Promise((resolve, reject) => {
    client.onConnect = () => resolve(client);
    client.onStompError = (f) => reject(new Error(`ERROR frame: ${f.headers.message}`));
    client.onWebSocketClose = (e) => reject(new Error(`socket closed before CONNECTED (code ${e?.code})`));
    client.activate();
  }), WAIT_MS, 'CONNECTED');
}

async function close(client) {
  openClients.delete(client);
  await withTimeout(client.deactivate(), WAIT_MS, 'disconnect').catch(() => client.forceDisconnect());
}

/** Subscribes and waits for the broker's RECEIPT, so the subscription is live before sends. */
async function subscribe(client, destination, onMessage, headers = {}) {
  const receipt = `sub-${unique()}`;
  const confirmed = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
  const sub = client.subscribe(destination, onMessage, { ...headers, receipt });
  await withTimeout(confirmed, WAIT_MS, `RECEIPT for SUBSCRIBE ${destination}`);
  return sub;
}

/** Publishes with a receipt and waits for it. */
async function publish(client, params) {
  const receipt = `send-${unique()}`;
  const confirmed = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
  client.publish({ ...params, headers: { ...(params.headers || {}), receipt } });
  await withTimeout(confirmed, WAIT_MS, `RECEIPT for SEND to ${params.destination}`);
}

/** Resolves once the async `predicate()` holds, polling; rejects after `ms`. */
async function untilAsync(predicate, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await predicate()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Resolves once `predicate()` holds, polling; rejects after `ms`. */
async function until(predicate, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (predicate()) return;
    await sleep(20);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

// ------------------------------------------------------------------------------------------
// Checks. Each is independent: own destinations, own clients.
// ------------------------------------------------------------------------------------------

const checks = [];
const check = (name, fn) => checks.push({ name, fn });

check('ws-queue-round-robin', async () => {
  const dest = `/queue/rr-${unique()}`;
  const got = [[], []];
  const consumers = [await connect(), await connect()];
  for (const [i, c] of consumers.entries()) await subscribe(c, dest, (m) => got[i].push(m.body));
  const producer = await connect();
  for (let i = 0; i < 10; i++) await publish(producer, { destination: dest, body: `m${i}` });
  await until(() => got[0].length + got[1].length >= 10, WAIT_MS, '10 messages');
  await sleep(100);
  const all = [...got[0], ...got[1]].sort();
  assert(all.length === 10 && new Set(all).size === 10, `each message exactly once, got ${JSON.stringify(got)}`);
  assert(Math.abs(got[0].length - got[1].length) <= 1, `round-robin split expected, got ${got[0].length}/${got[1].length}`);
  for (const c of [...consumers, producer]) await close(c);
});

check('ws-topic-fan-out', async () => {
  const dest = `/topic/fan-${unique()}`;
  const got = [[], [], []];
  const subs = [await connect(), await connect(), await connect()];
  for (const [i, c] of subs.entries()) await subscribe(c, dest, (m) => got[i].push(m.body));
  const producer = await connect();
  for (const body of ['a', 'b', 'c']) await publish(producer, { destination: dest, body });
  await until(() => got.every((g) => g.length >= 3), WAIT_MS, 'every subscriber to get 3 messages');
  for (const g of got) assert(g.join('') === 'abc', `each subscriber gets all, in order: ${JSON.stringify(got)}`);
  for (const c of [...subs, producer]) await close(c);
});

check('ws-client-individual-ack-redelivery', async () => {
  const dest = `/queue/ack-${unique()}`;
  const producer = await connect();
  for (const body of ['one', 'two', 'three']) await publish(producer, { destination: dest, body });
  const first = await connect();
  const seen = [];
  await subscribe(first, dest, (m) => {
    seen.push(m.body);
    if (m.body === 'two') m.ack();
  }, { ack: 'client-individual' });
  await until(() => seen.length >= 3, WAIT_MS, 'three deliveries');
  // The ACK for "two" must reach the broker before the disconnect: a receipt on a later frame
  // on the same connection proves it was processed.
  await publish(first, { destination: `/queue/ignore-${unique()}`, body: 'sync' });
  await close(first);
  const second = await connect();
  const again = [];
  await subscribe(second, dest, (m) => { again.push(m.body); m.ack(); }, { ack: 'client-individual' });
  await until(() => again.length >= 2, WAIT_MS, 'two redeliveries');
  await sleep(200);
  assert(JSON.stringify([...again].sort()) === JSON.stringify(['one', 'three']), `unacked redelivered, acked not: ${JSON.stringify(again)}`);
  await close(second);
  await close(producer);
});

check('ws-receipts', async () => {
  const client = await connect();
  const receipt = `r-${unique()}`;
  const got = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
  client.publish({ destination: `/queue/receipt-${unique()}`, body: 'x', headers: { receipt } });
  const frame = await withTimeout(got, WAIT_MS, 'RECEIPT');
  assert(frame.headers['receipt-id'] === receipt, `receipt-id ${frame.headers['receipt-id']}`);
  await close(client);
});

check('ws-heart-beats', async () => {
  let incoming = 0;
  let outgoing = 0;
  const debug = (line) => {
    if (line.includes('<<< PONG')) incoming++;
    if (line.includes('>>> PING')) outgoing++;
  };
  let closed = false;
  const client = await connect({ heartbeatIncoming: 200, heartbeatOutgoing: 200, debug });
  client.onWebSocketClose = () => { closed = true; };
  await sleep(1500);
  assert(!closed && client.connected, 'connection dropped while idle with heart-beats on');
  assert(incoming >= 2, `expected heart-beats from the broker within 1.5 s, saw ${incoming} (is its heartbeat send-ms <= 200?)`);
  assert(outgoing >= 2, `expected stompjs to send heart-beats, saw ${outgoing} (is the broker's receive-ms <= 200?)`);
  await close(client);
});

check('ws-text-body', async () => {
  const dest = `/queue/text-${unique()}`;
  const body = 'héllo wörld ✓ — 日本語';
  const client = await connect();
  let got = null;
  await subscribe(client, dest, (m) => { got = m; });
  await publish(client, { destination: dest, body, headers: { 'content-type': 'text/plain;charset=utf-8' } });
  await until(() => got, WAIT_MS, 'the message');
  assert(got.body === body, `body ${JSON.stringify(got.body)}`);
  await close(client);
});

check('ws-binary-body', async () => {
  const dest = `/queue/bin-${unique()}`;
  const bytes = new Uint8Array([0x00, 0xff, 0x00, 0x0a, 0x80, 0xfe, 0x00, 0x01]);
  const client = await connect();
  let got = null;
  await subscribe(client, dest, (m) => { got = m; });
  await publish(client, { destination: dest, binaryBody: bytes, headers: { 'content-type': 'application/octet-stream' } });
  await until(() => got, WAIT_MS, 'the message');
  const back = got.binaryBody;
  assert(back.length === bytes.length && back.every((b, i) => b === bytes[i]), `bytes ${Array.from(back)}`);
  await close(client);
});

check('ws-1mib-message', async () => {
  const dest = `/queue/big-${unique()}`;
  const bytes = new Uint8Array(1024 * 1024);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
  const client = await connect();
  let got = null;
  await subscribe(client, dest, (m) => { got = m; });
  await publish(client, { destination: dest, binaryBody: bytes });
  await until(() => got, WAIT_MS, 'the 1 MiB message');
  const back = got.binaryBody;
  assert(back.length === bytes.length, `length ${back.length}`);
  assert(back.every((b, i) => b === bytes[i]), 'content differs');
  await close(client);
});

check('tcp-send-receive', async () => {
  const dest = `/queue/tcp-${unique()}`;
  const client = await connect({ tcp: true });
  let got = null;
  await subscribe(client, dest, (m) => { got = m; });
  await publish(client, { destination: dest, body: 'over tcp', headers: { flavour: 'plain' } });
  await until(() => got, WAIT_MS, 'the message');
  assert(got.body === 'over tcp' && got.headers.flavour === 'plain', `got ${JSON.stringify(got.headers)} ${got.body}`);
  await close(client);
});

function wssConfig() {
  if (!wssUrl || !args.ca) throw new Error('no --wss HOST:PORT and --ca CA.pem given (run.sh sets up the TLS acceptor)');
  return { ca: fs.readFileSync(args.ca) };
}

check('wss-send-receive', async () => {
  const tls = wssConfig();
  const dest = `/queue/wss-${unique()}`;
  const client = await connect({ tls });
  let got = null;
  await subscribe(client, dest, (m) => { got = m; });
  await publish(client, { destination: dest, body: 'over wss ✓', headers: { 'x-secure': 'yes: tls', 'content-type': 'text/plain;charset=utf-8' } });
  await until(() => got, WAIT_MS, 'the message');
  assert(got.body === 'over wss ✓', `body ${JSON.stringify(got.body)}`);
  assert(got.headers['x-secure'] === 'yes: tls', `headers ${JSON.stringify(got.headers)}`);
  assert(got.headers.destination === dest, `destination ${got.headers.destination}`);
  await close(client);
});

check('wss-untrusted-ca-refused', async () => {
  wssConfig();
  // No `ca`: the throwaway CA is not in Node's trust store, so verification must fail.
  let socketError = null;
  const outcome = await connect({
    tls: { ca: undefined },
    onWebSocketError: (e) => { socketError = e?.error || e; },
  }).then((c) => ({ connected: c }), (e) => ({ error: e }));
  assert(!outcome.connected, 'a client not trusting the CA got CONNECTED');
  assert(!/timed out/.test(outcome.error.message), `expected a prompt TLS failure, got: ${outcome.error.message}`);
  const why = `${socketError?.code || ''} ${socketError?.message || ''}`;
  assert(/certificate|self[- ]signed|issuer/i.test(why), `expected a certificate verification error, got: ${why.trim() || outcome.error.message}`);
});

/** One raw HTTP exchange; resolves with status, headers and body. */
function httpRequest(pathname, headers = {}, method = 'GET') {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.request({ host: args.wsAddr.host, port: args.wsAddr.port, path: pathname, method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    // A 101 would mean the refusal did not happen.
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode, headers: res.headers, body: '' }); });
    req.on('error', reject);
    req.end();
  }), WAIT_MS, `HTTP ${method} ${pathname}`);
}

const upgradeHeaders = (protocol) => ({
  Connection: 'Upgrade',
  Upgrade: 'websocket',
  'Sec-WebSocket-Version': '13',
  'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
  ...(protocol ? { 'Sec-WebSocket-Protocol': protocol } : {}),
});

check('ws-bad-handshakes', async () => {
  const wrong = await httpRequest('/stomp', upgradeHeaders('mqtt'));
  assert(wrong.status === 400, `unknown subprotocol: status ${wrong.status}`);
  assert(wrong.body.includes('v12.stomp'), `400 body should name the supported subprotocols: ${wrong.body}`);
  const viaWs = await withTimeout(new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, ['mqtt']);
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode); ws.terminate(); });
    ws.on('open', () => { resolve('opened'); ws.terminate(); });
    ws.on('error', () => resolve('error'));
  }), WAIT_MS, 'ws client with a wrong subprotocol');
  assert(viaWs === 400, `ws client with a wrong subprotocol: ${viaWs}`);
  const plain = await httpRequest('/stomp');
  assert(plain.status === 426, `plain GET /stomp: status ${plain.status}`);
  assert(/websocket/i.test(plain.body), `426 body should explain: ${plain.body}`);
  const elsewhere = await httpRequest('/elsewhere', upgradeHeaders('v12.stomp'));
  assert(elsewhere.status === 404, `upgrade on an unknown path: status ${elsewhere.status}`);
  const post = await httpRequest('/', {}, 'POST');
  assert(post.status === 405, `POST /: status ${post.status}`);
  const garbage = await withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect(args.wsAddr.port, args.wsAddr.host, () => sock.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x0a])));
    const chunks = [];
    sock.on('data', (c) => chunks.push(c));
    sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    sock.on('error', reject);
  }), WAIT_MS, 'the broker to answer or close on garbage');
  assert(garbage === '' || garbage.startsWith('HTTP/1.1 400'), `garbage: ${JSON.stringify(garbage.slice(0, 80))}`);
});

check('http-console-and-stompjs', async () => {
  const page = await httpRequest('/');
  assert(page.status === 200 && /text\/html/.test(page.headers['content-type']), `GET /: ${page.status}`);
  for (const id of ['connect', 'status', 'destination', 'subscribe', 'send-destination', 'send-body', 'send-headers', 'send', 'messages']) {
    assert(page.body.includes(`id="${id}"`), `page lacks #${id}`);
  }
  assert(!/https?:\/\//.test(page.body.replace(/<!--[\s\S]*?-->/g, '')), 'page must not load external resources');
  const js = await httpRequest('/stompjs.umd.min.js');
  assert(js.status === 200 && js.body.includes('StompJs'), `GET /stompjs.umd.min.js: ${js.status}`);
});

/** Runs send_recv.py; resolves with its stdout lines once it exits (or rejects). */
function python(mode, extra, onLine = () => {}) {
  const py = process.env.WRENMQ_PYTHON || 'python3';
  const child = spawn(py, [path.join(here, 'send_recv.py'), mode, '--host', args.tcpAddr.host, '--port', String(args.tcpAddr.port), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let err = '';
  let pending = '';
  child.stdout.on('data', (c) => {
    pending += c.toString();
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      lines.push(line);
      onLine(line);
    }
  });
  child.stderr.on('data', (c) => { err += c.toString(); });
  const done = withTimeout(new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(lines) : reject(new Error(`send_recv.py ${mode} exited ${code}: ${err.trim().slice(-400)}`))));
  }), 30_000, `send_recv.py ${mode}`).catch((e) => { child.kill('SIGKILL'); throw e; });
  return { child, done };
}

check('browser-console', async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.setDefaultTimeout(WAIT_MS);
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(`http://${args.ws}/`);
    assert(await page.inputValue('#url') === `ws://${args.ws}/stomp`, 'URL field prefilled with this broker');
    await page.click('#connect');
    await page.waitForSelector('#status[data-state="connected"]');
    const topic = `/topic/browser-${unique()}`;
    await page.fill('#destination', topic);
    await page.click('#subscribe');
    // A probe sent by the page after its SUBSCRIBE, on the same connection, proves the
    // subscription is live before stomp.py sends.
    await page.fill('#send-destination', topic);
    await page.fill('#send-body', 'probe');
    await page.click('#send');
    await page.waitForSelector('.message >> text=probe');
    await page.click('#clear');

    await python('send', ['--destination', topic, '--body', 'hello from stomp.py', '--header', 'x-origin:python', '--header', 'colour:teal']).done;
    const msg = page.locator('.message', { hasText: 'hello from stomp.py' });
    await msg.waitFor();
    const headersText = await msg.locator('.message-headers').innerText();
    assert(headersText.includes('x-origin:python') && headersText.includes('colour:teal'), `headers shown: ${headersText}`);
    assert((await msg.locator('.message-body').innerText()) === 'hello from stomp.py', 'body shown');

    const replyQueue = `/queue/browser-reply-${unique()}`;
    let ready;
    const readyP = new Promise((r) => { ready = r; });
    const receiver = python('recv', ['--destination', replyQueue, '--timeout', '15'], (line) => { if (line === 'READY') ready(); });
    await withTimeout(Promise.race([readyP, receiver.done]), 20_000, 'stomp.py subscriber READY');
    await page.fill('#send-destination', replyQueue);
    await page.fill('#send-headers', 'x-from:browser\nreply-no:42');
    await page.fill('#send-body', 'hello from the console');
    await page.click('#send');
    const lines = await receiver.done;
    const got = JSON.parse(lines.find((l) => l.startsWith('{')) || '{}');
    assert(got.body === 'hello from the console', `stomp.py got body ${JSON.stringify(got.body)}`);
    assert(got.headers?.['x-from'] === 'browser' && got.headers?.['reply-no'] === '42', `stomp.py got headers ${JSON.stringify(got.headers)}`);

    const artifacts = process.env.WRENMQ_ARTIFACTS || path.join(here, '..', 'artifacts');
    fs.mkdirSync(artifacts, { recursive: true });
    await page.locator('.message', { hasText: 'hello from stomp.py' }).waitFor();
    await page.screenshot({ path: path.join(artifacts, 'console.png'), fullPage: true });
    assert(pageErrors.length === 0, `page errors: ${pageErrors.join('; ')}`);
  } finally {
    await browser.close().catch(() => {});
  }
});

/**
 * Launches headless Chromium the way every browser check does. The first launch on a fresh
 * machine reads the whole browser from a cold disk cache and has taken over 30 s on CI, so a
 * launch gets two minutes and one more try before the check fails.
 */
async function launchChromium() {
  const executablePath = process.env.WRENMQ_CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) throw new Error(`no Chromium at ${executablePath} (run.sh installs Debian's chromium)`);
  const { chromium } = await import('playwright-core');
  const launch = () => chromium.launch({
    executablePath,
    headless: true,
    timeout: 120_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--headless'],
  });
  try {
    return await launch();
  } catch (e) {
    console.error(`Chromium did not start (${String(e).split('\n')[0]}); trying once more`);
    return launch();
  }
}

// The operator console on the admin listener, driven like an operator would: browse a queue,
// retry a dead-lettered message to where it came from, close a connection with a reason.
check('browser-admin-console', async () => {
  assert(args.admin, 'no --admin HOST:PORT (run.sh passes the admin listener)');
  const artifacts = process.env.WRENMQ_ARTIFACTS || path.join(here, '..', 'artifacts');
  fs.mkdirSync(artifacts, { recursive: true });
  const id = unique();
  const shelf = `shelf-${id}`;
  const orders = `orders-${id}`;
  const producer = await connect();
  for (const body of ['alpha', 'beta', 'gamma']) await publish(producer, { destination: `/queue/${shelf}`, body });
  // A poison message: rejected for good, so it lands in the dead-letter queue with its origin.
  const consumer = await connect();
  const received = [];
  let nacked = false;
  await subscribe(consumer, `/queue/${orders}`, (m) => {
    if (!nacked) { nacked = true; m.nack({ requeue: 'false' }); } else { received.push(m.body); m.ack(); }
  }, { ack: 'client-individual' });
  await publish(producer, { destination: `/queue/${orders}`, body: `poison-${id}` });
  await until(() => nacked, WAIT_MS, 'the poison message delivered and nacked');
  // A connection for the operator to close.
  let closedWith = null;
  const victim = await connect({ connectHeaders: { host: 'localhost', 'client-id': `victim-${id}` } });
  victim.onStompError = (f) => { closedWith = f.headers.message; };

  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(WAIT_MS);
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    // The console asks in its own modal; a browser dialog would block an operator's tab.
    page.on('dialog', (d) => { pageErrors.push(`unexpected browser dialog: ${d.message()}`); d.dismiss(); });
    await page.goto(`http://${args.admin}/`);
    await page.waitForSelector('#ready');
    await page.click('a[data-view="queues"]');
    // Browse: the queue's three messages, in order, still there afterwards. Other checks made
    // many queues, so find it by name (the search goes to the server) rather than by page.
    await page.fill('#q-search', shelf);
    await page.click(`a[data-queue="${shelf}"]`);
    for (const body of ['alpha', 'beta', 'gamma']) await page.locator('td code', { hasText: body }).waitFor();
    await page.screenshot({ path: path.join(artifacts, 'admin-console-browse.png'), fullPage: true });
    const q = await (await fetch(`http://${args.admin}/api/v1/queues/${shelf}`)).json();
    assert(q.messages_ready === 3, `browsing consumed nothing (ready ${q.messages_ready})`);
    // Retry the dead letter: it goes back to its queue and the consumer gets it.
    await page.click('button[data-view-link="queues"]');
    await page.fill('#q-search', 'DLQ');
    await page.click('a[data-queue="DLQ"]');
    const row = page.locator('tr', { hasText: `poison-${id}` });
    await row.waitFor();
    assert((await row.innerText()).includes(orders), 'the dead letter shows its origin');
    await page.screenshot({ path: path.join(artifacts, 'admin-console-dlq.png'), fullPage: true });
    await row.locator('button[data-act="retry"]').click();
    await until(() => received.includes(`poison-${id}`), WAIT_MS, 'the retried message back at its consumer');
    // Close the connection with a reason: the client gets an ERROR carrying it.
    await page.click('a[data-view="connections"]');
    const conn = page.locator('tr', { hasText: `victim-${id}` });
    await conn.waitFor();
    await conn.locator('button[data-act="close"]').click();
    await page.fill('#modal [data-field="reason"]', `maintenance ${id}`);
    await page.click('#modal-ok');
    await until(() => closedWith !== null, WAIT_MS, 'the ERROR frame at the closed client');
    assert(closedWith === `maintenance ${id}`, `ERROR message ${JSON.stringify(closedWith)}`);
    // The closed tab lists it with its reason and when.
    await page.click('button[data-tab="closed"]');
    const gone = page.locator('tr', { hasText: `maintenance ${id}` });
    await gone.waitFor();
    assert(/\badmin\b/.test(await gone.innerText()), `closed row names the reason: ${await gone.innerText()}`);
    await page.screenshot({ path: path.join(artifacts, 'admin-console-connections.png'), fullPage: true });
    assert(pageErrors.length === 0, `page errors: ${pageErrors.join('; ')}`);
  } catch (e) {
    // What the page showed when it failed, for whoever reads the artifacts.
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages[0]) await pages[0].screenshot({ path: path.join(artifacts, 'admin-console-failure.png'), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await browser.close().catch(() => {});
    await close(producer);
    await close(consumer);
  }
});

/** Free loopback ports, as run.sh picks them (never the well-known 61613/61614). */
async function freePorts(n) {
  const grab = () => new Promise((res, rej) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); s.on('error', rej); });
  for (;;) {
    const ps = [];
    for (let i = 0; i < n; i++) ps.push(await grab());
    if (new Set(ps).size === n && !ps.some((p) => p === 61613 || p === 61614)) return ps;
  }
}

/**
 * A broker of the check's own, started from a configuration file with a monitor and an
 * operator bearer token (run.sh's broker has no credentials at all, and its anonymous
 * callers must stay admin for the other checks). No [[users]]: anonymous stays admin here too.
 * The binary is WRENMQ_BIN (run.sh exports it).
 */
async function startTokenBroker(extraToml = '') {
  const bin = process.env.WRENMQ_BIN;
  if (!bin || !fs.existsSync(bin)) throw new Error('WRENMQ_BIN must name the broker binary (run.sh sets it)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wrenmq-console-'));
  const [stomp, admin] = await freePorts(2);
  const tokens = { monitor: `mon-${randomUUID()}`, operator: `op-${randomUUID()}` };
  const sha = (t) => createHash('sha256').update(t).digest('hex');
  const everyone = '["guest", "monitor", "operator"]';
  const perms = ['send', 'consume', 'browse', 'create-address', 'delete-address', 'create-durable-queue', 'delete-durable-queue',
    'create-non-durable-queue', 'delete-non-durable-queue', 'manage'].map((p) => `${p} = ${everyone}`).join('\n');
  fs.writeFileSync(path.join(dir, 'broker.toml'), `[[acceptors]]
name = "stomp"
bind = "127.0.0.1:${stomp}"

[journal]
data-dir = "${path.join(dir, 'data')}"

[admin]
bind = "127.0.0.1:${admin}"
[[admin.tokens]]
name = "watcher"
sha256 = "${sha(tokens.monitor)}"
role = "monitor"
[[admin.tokens]]
name = "oncall"
sha256 = "${sha(tokens.operator)}"
role = "operator"

# The token principals browse with their own roles: give them the address permissions.
[[security-settings]]
match = "#"
${perms}
${extraToml}`);
  const log = fs.openSync(path.join(dir, 'broker.log'), 'w');
  const child = spawn(bin, ['--config', path.join(dir, 'broker.toml')], { stdio: ['ignore', log, log] });
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await withTimeout(new Promise((r) => child.once('exit', r)), 5000, 'broker exit').catch(() => child.kill('SIGKILL'));
    }
    fs.closeSync(log);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const base = `http://127.0.0.1:${admin}`;
  try {
    await untilAsync(async () => {
      if (child.exitCode !== null) throw new Error(`broker exited: ${fs.readFileSync(path.join(dir, 'broker.log'), 'utf8').slice(-600)}`);
      return fetch(`${base}/healthz`).then((r) => r.ok, () => false);
    }, WAIT_MS, 'the token broker to serve');
  } catch (e) { await stop(); throw e; }
  return { base, stompAddr: { host: '127.0.0.1', port: stomp }, tokens, stop, configFile: path.join(dir, 'broker.toml') };
}

// The console's own actions, driven like an operator would, on a broker of its own: create a
// queue, search and sort, choose columns, send from the queue detail, view the body as text /
// JSON / hex, download it, resend it, purge with the typed confirmation, pause, delete, a
// dry-run reload, connection filters, what a monitor and an operator token may see, and
// hostile headers and bodies rendered as text.
check('browser-admin-console-actions', async () => {
  const artifacts = process.env.WRENMQ_ARTIFACTS || path.join(here, '..', 'artifacts');
  fs.mkdirSync(artifacts, { recursive: true });
  // No file watcher: the check changes the file and the reload must wait for its confirmation.
  const broker = await startTokenBroker('[broker]\nwatch-config = false\n');
  const api = async (p, init) => {
    const r = await fetch(broker.base + p, init);
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
  const id = unique();
  const work = `work-${id}`;
  const big = `big-${id}`;
  const browser = await launchChromium();
  const shot = (page, name) => page.screenshot({ path: path.join(artifacts, `admin-actions-${name}.png`), fullPage: true });
  let client = null;
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, acceptDownloads: true });
    page.setDefaultTimeout(WAIT_MS);
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('dialog', (d) => { pageErrors.push(`unexpected browser dialog: ${d.message()}`); d.dismiss(); });
    const noXss = async (where) => {
      assert(await page.evaluate(() => window.__xss) === undefined, `a hostile header or body ran as script (${where})`);
      assert(await page.locator('#view img').count() === 0, `a hostile header or body became an element (${where})`);
    };
    await page.goto(`${broker.base}/`);

    // Overview: every readiness check listed, journal p99, memory and disk, rate sparklines.
    await page.waitForSelector('#ready');
    const ready = (await api('/readyz')).body;
    for (const c of ready.checks) await page.locator('#checks tr', { hasText: c.name }).waitFor();
    assert(/commit p99/.test(await page.innerText('#journal')), 'journal card shows the commit p99');
    assert(/Message memory/.test(await page.innerText('#resources')) && /alarm at \d+ %/.test(await page.innerText('#resources')), 'memory and disk against their limits');
    assert(await page.locator('.spark svg').count() === 3, 'in / out / ack sparklines');
    await shot(page, 'overview');

    // Addresses: create one from the form, find it, delete it (no queues: no typed name).
    const addr = `addr-${id}`;
    await page.click('a[data-view="addresses"]');
    await page.fill('#newaddr', addr);
    await page.selectOption('#newrt', 'multicast');
    await page.click('button[data-act="addaddr"]');
    await page.fill('#a-name', addr);
    await untilAsync(async () => (await page.locator('#data tr').count()) === 2 && (await page.innerText('#data')).includes(addr), WAIT_MS, 'the search to keep the new address');
    assert(JSON.stringify((await api(`/api/v1/addresses/${addr}`)).body.routing_types) === '["multicast"]', 'address created multicast');
    await page.click(`button[data-act="deladdr"][data-name="${addr}"]`);
    assert(await page.locator('#modal-confirm').count() === 0, 'an address without queues asks for no typed name');
    await page.click('#modal-ok');
    await untilAsync(async () => (await api(`/api/v1/addresses/${addr}`)).status === 404, WAIT_MS, 'the address deleted');

    // Create a queue from the form.
    await page.click('a[data-view="queues"]');
    await page.click('button[data-act="newqueue"]');
    await page.fill('#modal [data-field="name"]', work);
    await page.click('#modal-ok');
    await page.locator(`a[data-queue="${work}"]`).waitFor();
    const created = await api(`/api/v1/queues/${work}`);
    assert(created.status === 200 && created.body.routing_type === 'anycast' && created.body.durable === true, `queue created: ${JSON.stringify(created)}`);
    // A second, non-empty queue (for sorting, the truncated banner and the typed delete).
    const sent = await api(`/api/v1/addresses/${big}/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ queue: big, body: 'x'.repeat(1_200_000) }) });
    assert(sent.status === 200 && sent.body.routed_to.includes(big), `big message sent: ${JSON.stringify(sent.body)}`);

    // Search by name and by regex (on the server); sort by a column (on the server).
    await page.fill('#q-search', id);
    await untilAsync(async () => (await page.locator('a[data-queue]').count()) === 2, WAIT_MS, 'search to keep the two queues of this check');
    await page.check('#q-regex');
    await page.fill('#q-search', `^work-${id}$`);
    await untilAsync(async () => (await page.locator('a[data-queue]').allInnerTexts()).join() === work, WAIT_MS, 'regex search to keep one queue');
    await page.uncheck('#q-regex');
    await page.fill('#q-search', '');
    await page.click('a[data-sort="messages"]');
    await page.click('a[data-sort="messages"]');
    const top = (await api('/api/v1/queues?sort=messages&order=desc&limit=1')).body.items[0].name;
    await untilAsync(async () => (await page.locator('a[data-queue]').first().innerText()) === top, WAIT_MS, `sorted by total, descending (${top} first)`);
    assert((await page.locator('th', { hasText: 'total ▼' }).count()) === 1, 'the sorted column is marked');
    // Column chooser, remembered across a reload of the page.
    await page.click('details.cols summary');
    await page.uncheck('input[data-col="address"]');
    await untilAsync(async () => (await page.locator('th', { hasText: /^address$/ }).count()) === 0, WAIT_MS, 'the address column to go');
    await page.reload();
    await page.waitForSelector('#ready');
    await page.click('a[data-view="queues"]');
    await page.locator(`a[data-queue="${work}"]`).waitFor();
    assert((await page.locator('th', { hasText: /^address$/ }).count()) === 0, 'the column choice survives a reload (localStorage)');
    await page.click('details.cols summary');
    await page.check('input[data-col="address"]');
    await page.locator('th', { hasText: /^address$/ }).waitFor();
    await page.click('details.cols summary');

    // Send from the queue detail, with a hostile header and body.
    const hostileHeader = '<img src=x onerror="window.__xss=1">';
    const body = JSON.stringify({ n: 1, tag: '<img src=x onerror=window.__xss=2><script>window.__xss=3</script>' });
    await page.click(`a[data-queue="${work}"]`);
    await page.click('#send-panel summary');
    await page.fill('#send-headers', `colour: teal\nx-evil: ${hostileHeader}`);
    await page.fill('#send-body', body);
    await page.click('button[data-act="send"]');
    await page.locator('#note', { hasText: `to ${work}` }).waitFor();
    await page.locator('td code', { hasText: '"n":1' }).waitFor();
    const browsed = (await api(`/api/v1/queues/${work}/messages?body=full`)).body.items;
    assert(browsed.length === 1 && browsed[0].body_preview === body && browsed[0].headers.colour === 'teal' && browsed[0].headers['x-evil'] === hostileHeader,
      `the message as sent: ${JSON.stringify(browsed)}`);
    await noXss('browse');

    // View it as text, JSON and hex; the hostile header shows as text.
    await page.click('#msgs button[data-act="view"]');
    await page.locator('#message td code', { hasText: hostileHeader }).waitFor();
    assert(await page.textContent('#body-out') === body, 'body as text');
    await page.click('button[data-act="body-mode"][data-mode="json"]');
    assert(await page.textContent('#body-out') === JSON.stringify(JSON.parse(body), null, 2), 'body as pretty JSON');
    await shot(page, 'message-json');
    await page.click('button[data-act="body-mode"][data-mode="hex"]');
    const hex = await page.textContent('#body-out');
    assert(hex.startsWith('00000000  7b 22 6e 22 3a 31') && hex.includes('|{"n":1,"tag":"<i|'), `body as hex: ${hex.slice(0, 120)}`);
    await noXss('message view');
    // Download: the raw body through a blob link.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#message button[data-act="download"]')]);
    assert(fs.readFileSync(await download.path(), 'utf8') === body, 'the downloaded body is the message body');
    // Resend as new: the form is filled from the message; edit the body and send.
    await page.click('button[data-act="resend"]');
    assert(await page.inputValue('#send-body') === body, 'resend fills the body');
    assert((await page.inputValue('#send-headers')).includes('colour: teal'), 'resend fills the headers');
    await page.fill('#send-body', `resent-${id}`);
    await page.click('button[data-act="send"]');
    await page.locator('td code', { hasText: `resent-${id}` }).waitFor();
    const two = (await api(`/api/v1/queues/${work}/messages`)).body.items;
    assert(two.length === 2 && two[1].body_preview === `resent-${id}` && two[1].headers.colour === 'teal', `resent as a new message: ${JSON.stringify(two)}`);

    // Pause and resume.
    await page.click('#qbar button[data-act="pause"]');
    await page.locator('#qbar .badge', { hasText: 'paused' }).waitFor();
    assert((await api(`/api/v1/queues/${work}`)).body.paused === true, 'paused');
    await page.click('#qbar button[data-act="resume"]');
    await page.locator('#qbar button[data-act="pause"]').waitFor();
    assert((await api(`/api/v1/queues/${work}`)).body.paused === false, 'resumed');

    // Purge the first one with the typed confirmation: OK stays disabled until the name is typed.
    await page.click('#qbar button[data-act="purge"]');
    await page.selectOption('#modal [data-field="mode"]', 'first');
    await page.fill('#modal [data-field="limit"]', '1');
    assert(await page.isDisabled('#modal-ok'), 'purging a non-empty queue waits for its name');
    await page.fill('#modal-confirm', 'wrong name');
    assert(await page.isDisabled('#modal-ok'), 'a wrong name does not confirm');
    await page.fill('#modal-confirm', work);
    await shot(page, 'purge-confirm');
    await page.click('#modal-ok');
    await page.locator('#note', { hasText: 'removed 1 message from' }).waitFor();
    const left = (await api(`/api/v1/queues/${work}/messages`)).body.items;
    assert(left.length === 1 && left[0].body_preview === `resent-${id}`, `the first one purged: ${JSON.stringify(left)}`);

    // Copy the one left to another queue, move it back from there, delete one.
    const spare = `spare-${id}`;
    assert((await api(`/api/v1/queues/${spare}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status === 201, 'spare queue created');
    await page.click('#msgs button[data-act="copy"]');
    await page.fill('#modal [data-field="to"]', spare);
    await page.click('#modal-ok');
    await page.locator('#note', { hasText: `copied 1 to ${spare}` }).waitFor();
    const copied = (await api(`/api/v1/queues/${spare}/messages`)).body.items;
    assert(copied.length === 1 && copied[0].body_preview === `resent-${id}` && (await api(`/api/v1/queues/${work}`)).body.messages === 1, `copied, original kept: ${JSON.stringify(copied)}`);
    await page.click('button[data-view-link="queues"]');
    await page.fill('#q-search', spare);
    await page.click(`a[data-queue="${spare}"]`);
    await page.click('#msgs button[data-act="move"]');
    await page.fill('#modal [data-field="to"]', work);
    await page.click('#modal-ok');
    await page.locator('#note', { hasText: `moved 1 to ${work}` }).waitFor();
    assert((await api(`/api/v1/queues/${spare}`)).body.messages === 0 && (await api(`/api/v1/queues/${work}`)).body.messages === 2, 'moved back');
    await page.click('button[data-view-link="queues"]');
    await page.fill('#q-search', work);
    await page.click(`a[data-queue="${work}"]`);
    await page.locator('#msgs button[data-act="delmsg"]').first().click();
    await page.locator('#note', { hasText: 'deleted message' }).waitFor();
    assert((await api(`/api/v1/queues/${work}`)).body.messages === 1, 'one message deleted');

    // Paging on the server: the browser's "load more" and the queue list's next page.
    const post = (q, b) => api(`/api/v1/addresses/${q}/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ queue: q, body: b }) });
    for (let i = 0; i < 55; i++) assert((await post(spare, `page-${i}`)).status === 200, 'paging message sent');
    await page.click('button[data-view-link="queues"]');
    await page.fill('#q-search', spare);
    await page.click(`a[data-queue="${spare}"]`);
    await page.locator('#msgs td code', { hasText: 'page-49' }).waitFor();
    assert(await page.locator('#msgs button[data-act="view"]').count() === 50, 'the first page of the browse holds 50');
    await page.click('button[data-act="more"]');
    await page.locator('#msgs td code', { hasText: 'page-54' }).waitFor();
    const bodies = await page.locator('#msgs td code').filter({ hasText: /^page-\d+$/ }).allInnerTexts();
    assert(bodies.length === 55 && bodies.every((t, i) => t === `page-${i}`), `load more appends the rest in order: ${bodies.slice(45).join(',')}`);
    assert(await page.locator('button[data-act="more"]').count() === 0, 'no more to load');
    for (let i = 0; i < 27; i++) assert((await api(`/api/v1/queues/pg-${id}-${String(i).padStart(2, '0')}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status === 201, 'paging queue');
    await page.click('button[data-view-link="queues"]');
    await page.selectOption('#q-limit', '25');
    await page.fill('#q-search', `pg-${id}-`);
    await untilAsync(async () => (await page.locator('a[data-queue]').count()) === 25, WAIT_MS, 'a first page of 25 queues');
    await page.click('button[data-act="page-next"]');
    await untilAsync(async () => (await page.locator('a[data-queue]').allInnerTexts()).join() === `pg-${id}-25,pg-${id}-26`, WAIT_MS, 'the next page: the last 2');
    assert(await page.locator('button[data-act="page-next"]').count() === 0, 'no page after the last');
    await page.click('button[data-act="page-first"]');
    await untilAsync(async () => (await page.locator('a[data-queue]').first().innerText()) === `pg-${id}-00`, WAIT_MS, 'back to the first page');
    await page.selectOption('#q-limit', '50');

    // The large message: its size and the truncated banner.
    await page.fill('#q-search', big);
    await page.click(`a[data-queue="${big}"]`);
    await page.click('#msgs button[data-act="view"]');
    await page.locator('#truncated', { hasText: '1200000 bytes' }).waitFor();
    assert(await page.locator('#message button[data-act="resend"]').count() === 0, 'no resend of a body the view does not hold whole');
    await shot(page, 'truncated');
    // Delete it from the list: typed confirmation, since it holds a message.
    await page.click('button[data-view-link="queues"]');
    await page.click(`button[data-act="delqueue"][data-name="${big}"]`);
    assert(await page.isDisabled('#modal-ok'), 'deleting a non-empty queue waits for its name');
    await page.fill('#modal-confirm', big);
    await page.click('#modal-ok');
    await untilAsync(async () => (await api(`/api/v1/queues/${big}`)).status === 404, WAIT_MS, 'the big queue deleted');

    // Configuration: the reload button shows the dry run (or why there is none) first, then
    // applies on confirmation. The file gains a declared address.
    const declared = `declared-${id}`;
    fs.appendFileSync(broker.configFile, `\n[[addresses]]\nname = "${declared}"\nrouting-types = ["anycast"]\n`);
    await page.click('a[data-view="config"]');
    await page.click('button[data-act="reload-dry"]');
    const dry = await api('/api/v1/config/reload?dry_run=true', { method: 'POST' });
    const report = page.locator('#reload-report');
    await report.waitFor();
    if (dry.status === 409) {
      assert((await report.innerText()).includes(dry.body.message), `the 409 explained: ${await report.innerText()}`);
    } else {
      assert(dry.status === 200, `dry run: ${dry.status}`);
      const text = await report.innerText();
      assert(/dry run/i.test(text), `a dry-run report: ${text}`);
      for (const [key, title] of [['applied', 'applied'], ['requires_restart', 'requires restart'], ['rejected', 'rejected']]) {
        const n = (dry.body[key] || []).length;
        assert(text.includes(n ? `${title} (${n})` : `${title} none`), `the dry-run report lists ${title} as the API does: ${text}`);
      }
      assert(dry.body.applied.some((k) => k.includes(declared)) && text.includes(declared), `the dry run names the new address: ${text}`);
      assert((await api(`/api/v1/addresses/${declared}`)).status === 404, 'a dry run applies nothing');
      await shot(page, 'config-dry-run');
      await page.click('button[data-act="reload-apply"]');
      await page.locator('#reload-report', { hasText: 'Reloaded.' }).waitFor();
      assert((await api(`/api/v1/addresses/${declared}`)).status === 200, 'the confirmed reload declared the address');
    }
    await shot(page, 'config');

    // Connections: filters by client-id and transport (on the server).
    client = await connect({ tcp: true, tcpAddr: broker.stompAddr, connectHeaders: { host: 'localhost', 'client-id': `filt-${id}` } });
    await page.click('a[data-view="connections"]');
    await page.fill('#c-client', `filt-${id}`);
    await page.locator('tr', { hasText: `filt-${id}` }).waitFor();
    await page.selectOption('#c-transport', 'ws');
    await page.locator('#data', { hasText: 'no open connection' }).waitFor();
    await page.selectOption('#c-transport', 'tcp');
    await page.locator('tr', { hasText: `filt-${id}` }).waitFor();
    // Subscriptions: filtered by queue, linked to the queue detail and on to the connection.
    const subQueue = `sub-${id}`;
    await subscribe(client, `/queue/${subQueue}`, () => {});
    await page.click('a[data-view="subscriptions"]');
    await page.fill('#s-queue', subQueue);
    await page.locator('#data tr', { hasText: `/queue/${subQueue}` }).waitFor();
    await page.click(`#data a[data-queue="${subQueue}"]`);
    await page.locator('#qsubs tr', { hasText: `/queue/${subQueue}` }).waitFor();
    await page.click('#qsubs a[data-conn]');
    await page.locator('#data tr', { hasText: `filt-${id}` }).waitFor();
    assert(await page.locator('#data tr').count() === 2, 'the connection link shows that one connection');

    // A monitor token sees no mutation at all; an operator token message operations but not
    // creating or deleting queues.
    const signIn = async (token) => {
      await page.click('#signin-link');
      await page.fill('#token', token);
      await page.click('#signin');
    };
    await signIn(broker.tokens.monitor);
    await page.locator('#who', { hasText: 'monitor' }).waitFor();
    for (const [view, ready] of [['queues', `a[data-queue="${work}"]`], ['addresses', 'td'], ['connections', `tr >> text=filt-${id}`], ['config', 'h2']]) {
      await page.click(`a[data-view="${view}"]`);
      if (view === 'queues') await page.fill('#q-search', work);
      await page.locator(ready).first().waitFor();
      assert(await page.locator('button.mut').count() === 0, `a monitor sees no mutation in ${view}`);
    }
    await page.click('a[data-view="queues"]');
    await page.click(`a[data-queue="${work}"]`);
    await page.locator('#msgs button[data-act="view"]').waitFor();
    assert(await page.locator('button.mut').count() === 0 && await page.locator('#send-panel').count() === 0, 'a monitor sees no mutation in the queue detail');
    await shot(page, 'monitor');
    await signIn(broker.tokens.operator);
    await page.locator('#who', { hasText: 'operator' }).waitFor();
    await page.locator('#qbar button[data-act="purge"]').waitFor();
    assert(await page.locator('#qbar button[data-act="delqueue"]').count() === 0, 'an operator cannot delete a queue');
    await page.locator('#send-panel').waitFor();
    await page.click('a[data-view="queues"]');
    await page.locator(`a[data-queue="${work}"]`).waitFor();
    assert(await page.locator('button[data-act="newqueue"]').count() === 0, 'an operator cannot create a queue');
    assert(await page.locator(`button[data-act="purge"][data-name="${work}"]`).count() === 1, 'an operator may purge');

    // Purge everything left, as the operator; an empty queue asks for no name.
    await page.click(`button[data-act="purge"][data-name="${work}"]`);
    await page.fill('#modal-confirm', work);
    await page.click('#modal-ok');
    await page.locator('#note', { hasText: 'removed 1 message from' }).waitFor();
    await untilAsync(async () => (await page.locator(`button[data-act="purge"][data-name="${work}"][data-count="0"]`).count()) === 1, WAIT_MS, 'the list to show it empty');
    await page.click(`button[data-act="purge"][data-name="${work}"]`);
    assert(await page.locator('#modal-confirm').count() === 0 && !(await page.isDisabled('#modal-ok')), 'an empty queue purges without typing its name');
    await page.click('#modal button[value="cancel"]');
    await noXss('end');
    assert(pageErrors.length === 0, `page errors: ${pageErrors.join('; ')}`);
  } catch (e) {
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages[0]) await pages[0].screenshot({ path: path.join(artifacts, 'admin-actions-failure.png'), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await browser.close().catch(() => {});
    if (client) await close(client);
    await broker.stop();
  }
});

// A resource alarm as the overview shows it: a broker whose disk limit (1 %) is below what the
// filesystem already uses is in disk alarm from the start.
check('browser-admin-console-alarm', async () => {
  const artifacts = process.env.WRENMQ_ARTIFACTS || path.join(here, '..', 'artifacts');
  fs.mkdirSync(artifacts, { recursive: true });
  const broker = await startTokenBroker('[broker]\nmax-disk-usage = 1\n');
  const browser = await launchChromium();
  try {
    const ready = await (await fetch(`${broker.base}/readyz`)).json();
    const disk = ready.checks.find((c) => c.name === 'disk_alarm');
    assert(!ready.ready && disk && !disk.ok, `the broker is in disk alarm: ${JSON.stringify(ready)}`);
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(WAIT_MS);
    await page.goto(`${broker.base}/`);
    await page.locator('#ready', { hasText: 'false' }).waitFor();
    await page.locator('#checks tr', { hasText: 'disk_alarm' }).locator('.badge.bad').waitFor();
    assert((await page.innerText('#checks')).includes(disk.detail), 'the failing check shows its detail');
    await page.locator('#resources.alarm .badge.bad', { hasText: 'disk alarm' }).waitFor();
    await page.screenshot({ path: path.join(artifacts, 'admin-alarm-overview.png'), fullPage: true });
  } finally {
    await browser.close().catch(() => {});
    await broker.stop();
  }
});

// ------------------------------------------------------------------------------------------

let passed = 0;
let failed = 0;
let skipped = 0;
for (const { name, fn } of checks) {
  if (args.only && !args.only.has(name)) continue;
  if (name.startsWith('browser') && args.skipBrowser) {
    console.log(`SKIP ${name}`);
    skipped++;
    continue;
  }
  const started = Date.now();
  try {
    await withTimeout(fn(), 60_000, name);
    console.log(`PASS ${name} (${Date.now() - started} ms)`);
    passed++;
  } catch (e) {
    console.log(`FAIL ${name}: ${e?.message || e}`);
    failed++;
  } finally {
    for (const c of openClients) {
      openClients.delete(c);
      try { c.forceDisconnect(); await c.deactivate({ force: true }); } catch { /* already closed */ }
    }
  }
}
if (process.env.CONFORMANCE_COUNTS) fs.writeFileSync(process.env.CONFORMANCE_COUNTS, `${passed} ${failed} ${skipped}\n`);
console.log(skipped ? `${passed} passed, ${failed} failed, ${skipped} skipped` : `${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
