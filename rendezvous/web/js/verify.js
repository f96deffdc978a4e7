// Verification: in active mode a head-turn challenge (ask for steps, guide the person through
// them while frames are taken from the camera, send the burst); in photo mode one still taken
// from the camera or picked from a file. Frames and photos are sent once, with this device's
// public key, and dropped.

import { dueAt, phaseAt } from './guide.js';

export async function startCamera(video) {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' },
    audio: false,
  });
  video.srcObject = stream;
  await video.play();
  return stream;
}

export function stopCamera(video) {
  const stream = video.srcObject;
  if (stream) for (const track of stream.getTracks()) track.stop();
  video.srcObject = null;
}

/** Draws the video's current frame, unmirrored as the camera sees it, and encodes it as JPEG. */
function grab(video, canvas) {
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  return new Promise((resolve, reject) =>
    canvas.toBlob(b => (b ? resolve(b) : reject(new Error('no frame'))), 'image/jpeg', 0.92));
}

/** The current frame as a JPEG. */
export function captureJpeg(video) {
  return grab(video, document.createElement('canvas'));
}

/**
 * Runs `script` (guide.js) against the camera: a frame when each is due, `show(phase, done)`
 * as the script moves on (done: 0..1). Resolves to `{frames, times}` (times in ms since the
 * first frame, as the verifier wants them).
 */
export async function captureBurst(video, script, show) {
  const canvas = document.createElement('canvas');
  const frames = [];
  const times = [];
  const start = performance.now();
  for (let i = 0; i < script.frames; i++) {
    const wait = start + dueAt(script, i) - performance.now();
    if (wait > 0) await new Promise(r => setTimeout(r, wait));
    const at = Math.round(performance.now() - start);
    show(phaseAt(script, at), Math.min(1, at / script.total));
    frames.push(await grab(video, canvas));
    times.push(at);
  }
  canvas.width = canvas.height = 0;
  return { frames, times };
}

/** `GET /v1/info`: `{verify_mode}`, or null when the verifier cannot say. */
export async function verifierInfo(verifierUrl) {
  const info = await ask(`${verifierUrl}/v1/info`);
  return info.error ? null : info;
}

/** Resolves to the answer's JSON, or `{error: {code}}` when there is none. */
async function ask(url, init = {}) {
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    return { error: { code: 'unreachable' } };
  }
  try {
    return await response.json();
  } catch {
    return { error: { code: 'internal' } };
  }
}

/** `GET /v1/pair/{code}`: `{public_key, fingerprint, expires_at, undisclosed}` or `{error}`. */
export function pairingInfo(verifierUrl, code) {
  return ask(`${verifierUrl}/v1/pair/${encodeURIComponent(code)}`);
}

/** `POST /v1/challenge`: `{challenge_id, steps, ...}` or `{error}`. */
export function requestChallenge(verifierUrl, publicKey) {
  return ask(`${verifierUrl}/v1/challenge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ public_key: publicKey }),
  });
}

/**
 * Asks the verifier; resolves to `{verified: true, token, gender, expires_at, peer_id}` or
 * `{verified: false, error: {code, message}}`. `evidence` is `{photo}` or `{challengeId,
 * frames, times}`, with `pairCode` when the check is for a terminal (the answer then says
 * `paired` and carries no token).
 */
export async function verify(verifierUrl, evidence, publicKey, undisclosed) {
  const form = new FormData();
  if (evidence.photo) {
    form.append('image', evidence.photo, 'selfie.jpg');
  } else {
    form.append('challenge_id', evidence.challengeId);
    evidence.frames.forEach((f, i) => form.append('frame', f, `frame${i}.jpg`));
    for (const t of evidence.times) form.append('frame_ms', String(t));
  }
  form.append('public_key', publicKey);
  if (evidence.pairCode) form.append('pair_code', evidence.pairCode);
  if (undisclosed) form.append('gender', 'undisclosed');
  const reply = await ask(`${verifierUrl}/v1/verify`, { method: 'POST', body: form });
  return reply.error && reply.verified === undefined ? { verified: false, ...reply } : reply;
}
