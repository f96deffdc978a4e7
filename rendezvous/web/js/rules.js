// The page's pure rules, with no DOM and no WebRTC: the chat frames' checks, contact details,
// the safety code, the profile's rules and the reconnect backoff. The constants come from the
// protocol crate (protocol.gen.js); a Node test holds these functions to the same test vectors
// as the Rust code (protocol/vectors, rendezvous/tests/page_rules.rs).

import {
  BIO_CHARS, CHUNK_BYTES, EMAIL_PATTERN, EMOJI_RANGES, FRAME_TYPES, IMAGE_TYPES, MAX_EMOJI,
  MAX_ID_BYTES, MAX_IMAGE_BYTES, MAX_TEXT_CHARS, NICKNAME_CHARS, PHONE_MIN_DIGITS, PHONE_PATTERN,
  RECONNECT_BASE_MS, RECONNECT_DOUBLINGS, RECONNECT_MAX_MS, REGIONAL_INDICATORS, SAFETY_CONTEXT,
} from './protocol.gen.js';

/** Each frame's fields and their checks; a frame has exactly these fields. */
const FIELDS = {
  hello: { v: v => Number.isInteger(v) && v >= 0 && v <= 0xffffffff },
  msg: { id: isId, text: t => typeof t === 'string' && [...t].length <= MAX_TEXT_CHARS },
  ack: { id: isId },
  typing: { on: on => typeof on === 'boolean' },
  image: {
    id: isId,
    mime: m => IMAGE_TYPES.includes(m),
    size: s => Number.isInteger(s) && s > 0 && s <= MAX_IMAGE_BYTES,
    chunks: c => Number.isInteger(c) && c >= 0,
  },
  bye: {},
};

function isId(id) {
  return typeof id === 'string' && id.length > 0 && new TextEncoder().encode(id).length <= MAX_ID_BYTES;
}

/**
 * Parses a text frame from the partner as strictly as the terminal client does
 * (anonchat_protocol::chat::parse): `{frame}`, or `{refused}` naming the type of the frame that
 * broke a rule (null when it has no known type).
 */
export function parseFrame(text) {
  const cap = 4 * MAX_TEXT_CHARS + 1024; // bytes, as the terminal client counts them
  if (typeof text !== 'string' || text.length > cap || new TextEncoder().encode(text).length > cap) {
    return { refused: null };
  }
  let frame;
  try { frame = JSON.parse(text); } catch { return { refused: null }; }
  if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) return { refused: null };
  const type = FRAME_TYPES.includes(frame.type) ? frame.type : null;
  const fields = type && FIELDS[type];
  if (!fields) return { refused: null };
  const keys = Object.keys(frame).filter(k => k !== 'type');
  const ok = keys.length === Object.keys(fields).length
    && keys.every(key => Object.hasOwn(fields, key) && fields[key](frame[key]))
    && (type !== 'image' || frame.chunks === Math.ceil(frame.size / CHUNK_BYTES));
  return ok ? { frame } : { refused: type };
}

const EMAIL = new RegExp(EMAIL_PATTERN, 'i');
const PHONE = new RegExp(PHONE_PATTERN, 'g');

/** An e-mail address, or a phone number (PHONE_MIN_DIGITS digits or more, so dates do not count). */
export function hasContactDetails(text) {
  if (EMAIL.test(text)) return true;
  for (const m of text.matchAll(PHONE)) {
    if ((m[0].match(/[0-9]/g) || []).length >= PHONE_MIN_DIGITS) return true;
  }
  return false;
}

/** The DTLS fingerprint line of an SDP (`sha-256 AB:CD:…`, upper-cased), or ''. */
export function sdpFingerprint(sdp) {
  for (const line of (sdp || '').split(/\r?\n/)) {
    const l = line.trim();
    if (l.startsWith('a=fingerprint:')) return l.slice('a=fingerprint:'.length).toUpperCase();
  }
  return '';
}

/** The code both sides show, from both DTLS fingerprints: twelve digits in three groups. */
export async function safetyCode(mine, theirs) {
  const [a, b] = mine <= theirs ? [mine, theirs] : [theirs, mine];
  const text = new TextEncoder().encode(`${SAFETY_CONTEXT}\n${a}\n${b}`);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', text));
  let n = 0n;
  for (let i = 0; i < 8; i++) n = (n << 8n) | BigInt(digest[i]);
  const digits = (n % 1000000000000n).toString().padStart(12, '0');
  return `${digits.slice(0, 4)} ${digits.slice(4, 8)} ${digits.slice(8)}`;
}

/** Emoji as the rendezvous counts them: pictographic characters, and a flag once. */
export function countEmoji(text) {
  const within = (c, [lo, hi]) => c >= lo && c <= hi;
  const points = [...text].map(ch => ch.codePointAt(0));
  const flags = Math.ceil(points.filter(c => within(c, REGIONAL_INDICATORS)).length / 2);
  return points.filter(c => EMOJI_RANGES.some(r => within(c, r))).length + flags;
}

/** What is wrong with a nickname and a bio (already trimmed), field by field ('' when nothing). */
export function profileErrors(nickname, bio) {
  const chars = (text, [min, max]) => {
    const n = [...text].length;
    return n < min || n > max ? `${min} to ${max} characters (${n} now)` : '';
  };
  const emoji = countEmoji(nickname) + countEmoji(bio);
  return {
    nickname: chars(nickname, NICKNAME_CHARS),
    bio: chars(bio, BIO_CHARS) || (emoji > MAX_EMOJI ? `at most ${MAX_EMOJI} emoji in all` : ''),
  };
}

/** The wait before the `attempt`-th reconnection (anonchat_protocol::rendezvous::reconnect_delay_ms). */
export function reconnectDelay(attempt, jitter = Math.floor(Math.random() * 2 ** 32)) {
  const base = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(attempt, RECONNECT_DOUBLINGS));
  return base - Math.floor(base / 8) + (jitter % (Math.floor(base / 4) + 1));
}

/**
 * The candidate as it may leave this browser: in relay-only mode relay candidates only, and in
 * every mode without a related address (a relay's raddr is the user's public address, a
 * reflexive one's the address behind the NAT). The terminal client's rule is peer/src/exposure.rs.
 */
export function shareableCandidate(candidate, relayOnly) {
  if (!candidate.startsWith('candidate:')) return null;
  const fields = candidate.slice('candidate:'.length).split(' ');
  if (fields.length < 8 || fields[6] !== 'typ') return null;
  if (relayOnly && fields[7] !== 'relay') return null;
  for (let i = 8; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'raddr') fields[i + 1] = '0.0.0.0';
    if (fields[i] === 'rport') fields[i + 1] = '0';
  }
  return `candidate:${fields.join(' ')}`;
}
