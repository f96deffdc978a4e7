// An independent libp2p node (js-libp2p): prints its peer id, reads a terminal client's listen
// address on stdin, dials it over TCP with Noise and Yamux, runs identify and ping, then opens
// /anonchat/chat/1 and sends one length-prefixed chat frame. Reports JSON lines on stdout.

import { createLibp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { multiaddr } from '@multiformats/multiaddr';
import { createInterface } from 'node:readline';

// Node 20 lacks Promise.withResolvers (ES2024), which a dependency uses.
if (!Promise.withResolvers) {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new this((yes, no) => { resolve = yes; reject = no; });
    return { promise, resolve, reject };
  };
}

const say = fields => process.stdout.write(JSON.stringify(fields) + '\n');

try {
  const node = await createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() },
  });
  say({ peer_id: node.peerId.toString() });
  const line = await new Promise(resolve => createInterface({ input: process.stdin }).once('line', resolve));
  const target = multiaddr(line.trim());

  const identified = new Promise(resolve =>
    node.addEventListener('peer:identify', e => resolve(e.detail), { once: true }));
  const connection = await node.dial(target);
  say({ connected: connection.remotePeer.toString(), encryption: connection.encryption, multiplexer: connection.multiplexer });
  const info = await identified;
  say({ identify: { protocol_version: info.protocolVersion, protocols: info.protocols } });
  const rtt = await node.services.ping.ping(target);
  say({ ping_ms: rtt });

  const stream = await node.dialProtocol(target, '/anonchat/chat/1');
  const payload = new TextEncoder().encode(JSON.stringify({ type: 'msg', id: 'js1', text: 'hello from js-libp2p' }));
  const frame = new Uint8Array(5 + payload.length);
  new DataView(frame.buffer).setUint32(0, payload.length + 1);
  frame[4] = 0;
  frame.set(payload, 5);
  await stream.sink([frame]);
  say({ sent: true });
  await new Promise(r => setTimeout(r, 200));
  await node.stop();
  say({ done: true });
  process.exit(0);
} catch (e) {
  say({ failed: String(e && e.stack || e) });
  process.exit(1);
}
