// A chat with the partner over a WebRTC data channel: the same signaling and chat frames as the
// terminal client (DESIGN.md §6). Events: 'open' (detail: {safetyCode, path, local, remote}), 'message' ({id, text,
// flagged}), 'ack' ({id}), 'typing' ({on}), 'image' ({url, bytes}), 'refused' ({reason}),
// 'gone' ({how: 'left' | 'lost'}).

import { CHAT_VERSION, CHUNK_BYTES, DATA_CHANNEL, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS } from './protocol.gen.js';
import { hasContactDetails, parseFrame, safetyCode, sdpFingerprint, shareableCandidate } from './rules.js';

/** The MIME type of an image we accept, from its first bytes. */
function sniff(bytes) {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg';
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'image/png';
  if (String.fromCharCode(...bytes.slice(0, 4)) === 'RIFF' && String.fromCharCode(...bytes.slice(8, 12)) === 'WEBP') return 'image/webp';
  return null;
}

/**
 * Checks an image; resolves to its MIME type or rejects. Its size comes from the header first
 * (an image that is only loaded, not shown, is not decoded yet), so an image claiming more
 * than MAX_IMAGE_PIXELS is refused before any pixel is drawn; the rest is then decoded.
 */
export async function checkImage(bytes) {
  if (bytes.length === 0 || bytes.length > MAX_IMAGE_BYTES) throw new Error('bad_image');
  const mime = sniff(bytes);
  if (!mime) throw new Error('bad_image');
  const url = URL.createObjectURL(new Blob([bytes], { type: mime }));
  try {
    const img = new Image();
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error('bad_image'));
      img.src = url;
    });
    if (img.naturalWidth * img.naturalHeight > MAX_IMAGE_PIXELS) throw new Error('too_many_pixels');
    await img.decode();
  } finally {
    URL.revokeObjectURL(url);
  }
  return mime;
}

/** True when one of the servers is a TURN relay. */
export function hasTurn(iceServers) {
  return (iceServers || []).some(s => [].concat(s.urls).some(u => /^turns?:/.test(u)));
}

export class PeerChat extends EventTarget {
  /** `relayOnly`: only relay candidates are gathered and sent (the partner never sees our address). */
  constructor(role, iceServers, sendSignal, { relayOnly = false } = {}) {
    super();
    this.sendSignal = sendSignal;
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [], iceTransportPolicy: relayOnly ? 'relay' : 'all' });
    this.ended = false;
    this.incoming = null;
    this.nextId = 0;
    this.pending = [];
    this.pc.onicecandidate = e => {
      const candidate = e.candidate && e.candidate.candidate && shareableCandidate(e.candidate.candidate, relayOnly);
      if (candidate) {
        sendSignal({
          kind: 'candidate',
          candidate,
          sdp_mid: e.candidate.sdpMid,
          sdp_m_line_index: e.candidate.sdpMLineIndex,
        });
      }
    };
    this.pc.onconnectionstatechange = () => {
      if (['failed', 'closed'].includes(this.pc.connectionState)) this.gone('lost');
    };
    if (role === 'offerer') {
      this.attach(this.pc.createDataChannel(DATA_CHANNEL, { ordered: true }));
      // The description as created, before gathering: the local description later carries
      // every candidate gathered so far, which must pass shareableCandidate first.
      this.pc.createOffer()
        .then(offer => this.pc.setLocalDescription(offer).then(() => sendSignal({ kind: 'offer', sdp: offer.sdp })));
    } else {
      this.pc.ondatachannel = e => {
        if (e.channel.label === DATA_CHANNEL) this.attach(e.channel);
      };
    }
  }

  async signal(data) {
    if (data.kind === 'offer') {
      await this.pc.setRemoteDescription({ type: 'offer', sdp: data.sdp });
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      this.sendSignal({ kind: 'answer', sdp: answer.sdp });
      await this.flushCandidates();
    } else if (data.kind === 'answer') {
      await this.pc.setRemoteDescription({ type: 'answer', sdp: data.sdp });
      await this.flushCandidates();
    } else if (data.kind === 'candidate') {
      const candidate = { candidate: data.candidate, sdpMid: data.sdp_mid, sdpMLineIndex: data.sdp_m_line_index };
      // Candidates can overtake the description they belong to.
      if (this.pc.remoteDescription) await this.pc.addIceCandidate(candidate).catch(() => {});
      else this.pending.push(candidate);
    }
  }

  async flushCandidates() {
    for (const c of this.pending.splice(0)) await this.pc.addIceCandidate(c).catch(() => {});
  }

  attach(channel) {
    this.channel = channel;
    channel.binaryType = 'arraybuffer';
    channel.onopen = async () => {
      this.sendFrame({ type: 'hello', v: CHAT_VERSION });
      const code = await safetyCode(sdpFingerprint(this.pc.localDescription.sdp), sdpFingerprint(this.pc.remoteDescription.sdp));
      this.dispatchEvent(new CustomEvent('open', { detail: { safetyCode: code, ...(await this.path()) } }));
    };
    channel.onmessage = e => this.receive(e.data);
    channel.onclose = () => this.gone('lost');
  }

  /** The chosen pair: `direct` or `relayed`, with both candidate types. */
  async path() {
    const stats = await this.pc.getStats();
    let pair = null;
    stats.forEach(r => {
      if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
    });
    if (!pair) stats.forEach(r => { if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r; });
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    const types = [local ? local.candidateType : 'unknown', remote ? remote.candidateType : 'unknown'];
    return { path: types.includes('relay') ? 'relayed' : 'direct', local: types[0], remote: types[1] };
  }

  sendFrame(frame) {
    if (this.channel && this.channel.readyState === 'open') this.channel.send(JSON.stringify(frame));
  }

  /** Sends a message; returns its id. */
  send(text) {
    const id = `w${++this.nextId}`;
    this.sendFrame({ type: 'msg', id, text });
    return id;
  }

  typing(on) {
    this.sendFrame({ type: 'typing', on });
  }

  /** Sends an image (checked first); returns its id, or throws 'bad_image'. */
  async sendImage(bytes) {
    const mime = await checkImage(bytes);
    const id = `w${++this.nextId}`;
    const chunks = Math.ceil(bytes.length / CHUNK_BYTES);
    this.sendFrame({ type: 'image', id, mime, size: bytes.length, chunks });
    for (let i = 0; i < chunks; i++) this.channel.send(bytes.slice(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES));
    return id;
  }

  refuse(reason) {
    this.dispatchEvent(new CustomEvent('refused', { detail: { reason } }));
  }

  async receive(data) {
    if (typeof data !== 'string') return this.receiveChunk(new Uint8Array(data));
    if (this.incoming) {
      this.incoming = null;
      this.refuse('an image was cut short');
    }
    this.discarding = false;
    const { frame, refused } = parseFrame(data);
    if (!frame) {
      // An image announcement over the limits is followed by chunks nobody should keep.
      this.discarding = refused === 'image';
      return this.refuse({ msg: 'a message over the limits', image: 'an image over the limits' }[refused] || 'a frame that is not understood');
    }
    switch (frame.type) {
      case 'hello': return;
      case 'msg':
        this.sendFrame({ type: 'ack', id: frame.id });
        return this.dispatchEvent(new CustomEvent('message', { detail: { id: frame.id, text: frame.text, flagged: hasContactDetails(frame.text) } }));
      case 'ack': return this.dispatchEvent(new CustomEvent('ack', { detail: { id: frame.id } }));
      case 'typing': return this.dispatchEvent(new CustomEvent('typing', { detail: { on: frame.on } }));
      case 'image':
        this.incoming = { id: frame.id, mime: frame.mime, size: frame.size, left: frame.chunks, parts: [], got: 0 };
        return;
      case 'bye': return this.gone('left');
    }
  }

  async receiveChunk(chunk) {
    if (this.discarding) return;
    const image = this.incoming;
    if (!image || chunk.length === 0 || chunk.length > CHUNK_BYTES || image.got + chunk.length > image.size) {
      this.incoming = null;
      this.discarding = true;
      return this.refuse('image chunks that do not add up');
    }
    image.parts.push(chunk);
    image.got += chunk.length;
    if (--image.left > 0) return;
    this.incoming = null;
    if (image.got !== image.size) return this.refuse('image chunks that do not add up');
    const bytes = new Uint8Array(image.size);
    let at = 0;
    for (const p of image.parts) { bytes.set(p, at); at += p.length; }
    this.sendFrame({ type: 'ack', id: image.id });
    try {
      const mime = await checkImage(bytes);
      if (mime !== image.mime) throw new Error('type');
      const url = URL.createObjectURL(new Blob([bytes], { type: mime }));
      this.dispatchEvent(new CustomEvent('image', { detail: { url, bytes: bytes.length } }));
    } catch (e) {
      this.refuse(e.message === 'too_many_pixels' ? 'an image over the limits' : 'an image that could not be decoded');
    }
  }

  /** The partner `left` (said bye) or was `lost` (the connection closed or failed). */
  gone(how) {
    if (this.ended) return;
    this.ended = true;
    this.dispatchEvent(new CustomEvent('gone', { detail: { how } }));
    this.close();
  }

  /** Says bye and closes. */
  end() {
    this.sendFrame({ type: 'bye' });
    this.ended = true;
    setTimeout(() => this.close(), 50);
  }

  close() {
    try { this.pc.close(); } catch { /* already closed */ }
  }
}
