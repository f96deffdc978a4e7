// The rendezvous connection: challenge-response login with the device key, then JSON frames
// (DESIGN.md §5). Events: 'message' (detail: the frame), 'close'.

import { base64url, sign } from './identity.js';
import { HELLO_CONTEXT } from './protocol.gen.js';

export class Rendezvous extends EventTarget {
  /** Connects and logs in; resolves to the `welcome` frame or rejects with `{code, message}`. */
  async connect(url, token, keyPair) {
    this.socket = new WebSocket(url);
    const first = await new Promise((resolve, reject) => {
      this.socket.onmessage = e => resolve(JSON.parse(e.data));
      this.socket.onerror = () => reject({ code: 'unreachable' });
      this.socket.onclose = () => reject({ code: 'unreachable' });
    });
    if (first.type !== 'challenge') throw { code: 'bad_message' };
    const signature = await sign(keyPair, new TextEncoder().encode(HELLO_CONTEXT + first.nonce));
    const welcome = await new Promise((resolve, reject) => {
      this.socket.onmessage = e => resolve(JSON.parse(e.data));
      this.socket.onclose = () => reject({ code: 'unreachable' });
      this.send({ type: 'hello', token, signature: base64url(signature) });
    });
    if (welcome.type === 'error') throw welcome;
    if (welcome.type !== 'welcome') throw { code: 'bad_message' };
    this.socket.onmessage = e => {
      let frame;
      try { frame = JSON.parse(e.data); } catch { return; }
      this.dispatchEvent(new CustomEvent('message', { detail: frame }));
    };
    this.socket.onclose = () => this.dispatchEvent(new Event('close'));
    return welcome;
  }

  get open() {
    return this.socket && this.socket.readyState === WebSocket.OPEN;
  }

  send(frame) {
    if (this.open) this.socket.send(JSON.stringify(frame));
  }

  close() {
    if (this.socket) this.socket.close();
  }
}
