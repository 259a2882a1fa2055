// bench/ws_load.mjs: STOMP-over-WebSocket load for one broker, with the `ws` package that
// conformance/node pins (run `npm ci` in conformance/node first; bench/websocket.sh does).
// `wrenmq perf` speaks STOMP over TCP only, hence this small client. Not part of CI.
//
//   node bench/ws_load.mjs flow  --url ws://127.0.0.1:PORT/stomp -n 200000 -s 256
//   node bench/ws_load.mjs connect --url ws://127.0.0.1:PORT/stomp -n 2000 -c 20
//
// flow: one consumer (ack auto) and one producer on /queue/wsbench, one STOMP frame per
// WebSocket message as browsers' stompjs sends them; the producer keeps at most --window
// messages ahead of the consumer. connect: -n WebSocket handshakes + STOMP CONNECT/CONNECTED,
// then close, -c at a time. Prints one JSON line. Every wait is bounded (--timeout seconds).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'conformance', 'node', 'package.json'));
const WebSocket = require('ws');

const args = { mode: process.argv[2], url: null, n: 200000, s: 256, c: 20, window: 2000, timeout: 120 };
for (let i = 3; i < process.argv.length; i++) {
  const a = process.argv[i];
  const v = process.argv[++i];
  if (a === '--url') args.url = v;
  else if (a === '-n') args.n = Number(v);
  else if (a === '-s') args.s = Number(v);
  else if (a === '-c') args.c = Number(v);
  else if (a === '--window') args.window = Number(v);
  else if (a === '--timeout') args.timeout = Number(v);
  else throw new Error(`unknown argument ${a}`);
}
if (!args.url || !['flow', 'connect'].includes(args.mode)) {
  throw new Error('usage: ws_load.mjs flow|connect --url ws://HOST:PORT/stomp [-n N] [-s SIZE] [-c CONC]');
}

const CONNECT = Buffer.from('CONNECT\naccept-version:1.2\nhost:localhost\n\n\0');

/** Opens a WebSocket, sends CONNECT, resolves once CONNECTED's NUL arrived. */
function open() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(args.url, ['v12.stomp'], { perMessageDeflate: false });
    ws.binaryType = 'nodebuffer';
    ws.once('error', reject);
    ws.once('open', () => ws.send(CONNECT));
    const first = (data) => {
      if (data.indexOf(0) >= 0) {
        ws.off('message', first);
        resolve(ws);
      }
    };
    ws.on('message', first);
  });
}

/** Counts the NULs (ends of frames) in a message. */
function frames(data) {
  let count = 0;
  let at = data.indexOf(0);
  while (at >= 0) {
    count++;
    at = data.indexOf(0, at + 1);
  }
  return count;
}

async function flow() {
  const consumer = await open();
  const producer = await open();
  let received = 0;
  let sent = 0;
  let messages = 0;
  let wake = null;
  const done = new Promise((resolve) => {
    consumer.on('message', (data) => {
      messages++;
      received += frames(data);
      if (received >= args.n + 1) resolve(); // + the RECEIPT of the SUBSCRIBE
      if (wake && sent - received < args.window / 2) {
        const w = wake;
        wake = null;
        w();
      }
    });
  });
  const subscribed = new Promise((resolve) => consumer.once('message', resolve));
  consumer.send(Buffer.from('SUBSCRIBE\nid:0\ndestination:/queue/wsbench\nack:auto\nreceipt:s\n\n\0'));
  await subscribed;
  received = 1;
  const frame = Buffer.concat([
    Buffer.from(`SEND\ndestination:/queue/wsbench\ncontent-length:${args.s}\n\n`),
    Buffer.alloc(args.s, 'x'),
    Buffer.from([0]),
  ]);
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  messages = 0;
  while (sent < args.n) {
    if (sent - received >= args.window) {
      await new Promise((resolve) => { wake = resolve; });
      continue;
    }
    producer.send(frame);
    sent++;
  }
  await done;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  producer.close();
  consumer.close();
  return {
    mode: 'flow', n: args.n, size: args.s, seconds, msgs_per_s: args.n / seconds,
    // The client's own CPU, and how many frames the broker put in each WebSocket message.
    client_us_per_msg: (used.user + used.system) / args.n, frames_per_ws_message: args.n / messages,
  };
}

async function connect() {
  let next = 0;
  const start = process.hrtime.bigint();
  async function worker() {
    while (next < args.n) {
      next++;
      const ws = await open();
      await new Promise((resolve) => {
        ws.once('close', resolve);
        ws.close();
      });
    }
  }
  await Promise.all(Array.from({ length: args.c }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { mode: 'connect', n: args.n, concurrency: args.c, seconds, per_s: args.n / seconds };
}

const timer = setTimeout(() => {
  console.error(`ws_load: no result within ${args.timeout} s`);
  process.exit(2);
}, args.timeout * 1000);
const result = await (args.mode === 'flow' ? flow() : connect());
clearTimeout(timer);
console.log(JSON.stringify(result));
process.exit(0);
