// The device identity (DESIGN.md §3): an Ed25519 key pair made here, its private half
// non-extractable and kept in IndexedDB; its peer id computed as libp2p does; the verification
// token in localStorage with its expiry.

const DB_NAME = 'anonchat';
const STORE = 'keys';
const TOKEN_KEY = 'anonchat.token';

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function database() {
  const open = indexedDB.open(DB_NAME, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE);
  return request(open);
}

/** This browser's device key pair, made on first use. */
export async function deviceKey() {
  const db = await database();
  const stored = await request(db.transaction(STORE).objectStore(STORE).get('device'));
  if (stored) return stored;
  const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  await request(db.transaction(STORE, 'readwrite').objectStore(STORE).put(pair, 'device'));
  return pair;
}

export async function publicKeyBytes(pair) {
  return new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
}

export async function sign(pair, bytes) {
  return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, pair.privateKey, bytes));
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

export function base58(bytes) {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let out = '';
  while (n > 0n) {
    out = BASE58[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = '1' + out;
  }
  return out;
}

/** The libp2p peer id of an Ed25519 public key: protobuf PublicKey, identity multihash, base58btc. */
export function peerId(publicKey) {
  const protobuf = [0x08, 0x01, 0x12, 0x20, ...publicKey];
  return base58(Uint8Array.from([0x00, protobuf.length, ...protobuf]));
}

export function base64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The stored token if it is still valid for a minute or more, else null. */
export function savedToken(peer) {
  try {
    const t = JSON.parse(localStorage.getItem(TOKEN_KEY));
    if (t && t.peer_id === peer && t.expires_at > Date.now() / 1000 + 60) return t;
  } catch { /* an unreadable token is no token */ }
  return null;
}

export function saveToken(t) {
  localStorage.setItem(TOKEN_KEY, JSON.stringify(t));
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}
