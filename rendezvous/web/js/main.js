// The page's wiring: DOM events and server frames become the reducer's events (phase.js), and
// its effects are carried out here; screens.js draws. Consent → camera → profile → waiting →
// chat → ended.

import { deviceKey, publicKeyBytes, peerId, base64url, savedToken, saveToken, forgetToken } from './identity.js';
import { startCamera, stopCamera, captureJpeg, captureBurst, pairingInfo, requestChallenge, verifierInfo, verify } from './verify.js';
import { plan } from './guide.js';
import { Rendezvous } from './rendezvous.js';
import { PeerChat, hasTurn } from './chat.js';
import { MAX_INTERESTS, MAX_TEXT_CHARS } from './protocol.gen.js';
import { hasContactDetails, profileErrors } from './rules.js';
import { explain } from './messages.js';
import { initial, step } from './phase.js';
import { $, addImage, addLine, addSystem, chatBegins, chatConnected, delivered, render, status } from './screens.js';

const MATCH_KEY = 'anonchat.match';
const PROFILE_KEY = 'anonchat.profile';
const TYPING_PAUSE_MS = 4000;

/** Where the page is: only `dispatch` changes it. */
let phase = initial;

/** What the reducer does not decide: the device, its token, and the live connections. */
const state = {
  config: null,
  /** The verifier's `verify_mode`: `active` (a head-turn challenge) unless it says `photo`. */
  mode: 'active',
  keyPair: null,
  publicKey: null,
  /** A terminal's pairing, when the page was opened to verify for it: `{code, info}`. */
  pair: null,
  peer: null,
  token: null,
  rdv: null,
  welcome: null,
  chat: null,
  typingOn: false,
  typingTimer: null,
  confirmText: null,
};

function dispatch(event) {
  const prev = phase;
  const { state: next, effects } = step(phase, event);
  phase = next;
  render(prev, next);
  for (const effect of effects) carryOut(effect);
  // After the effects, which may still say goodbye on the chat's channel.
  if (prev.phase === 'chat' && next.phase !== 'chat') chatOver();
}

/** One effect of the reducer (see `step` in phase.js). */
function carryOut(e) {
  if (e.send) state.rdv?.send(e.send);
  else if (e.connect) connect();
  else if (e.after !== undefined) setTimeout(() => dispatch(e.event), e.after);
  else if (e.status !== undefined) status(e.status);
  else if (e.waitingText) $('waiting-count').textContent = e.waitingText;
  else if (e.profileError !== undefined) $('profile-error').textContent = e.profileError;
  else if (e.fieldError) {
    $(`${e.fieldError.field}-error`).textContent = e.fieldError.message;
    $(e.fieldError.field).focus();
  } else if (e.forgetToken) {
    forgetToken();
    state.token = null;
  } else if (e.startCamera) startCameraScreen();
  else if (e.startChat) startChat(e.startChat);
  else if (e.signal) state.chat?.signal(e.signal);
  else if (e.chat === 'bye') state.chat?.end();
  else if (e.chat === 'close') state.chat?.close();
  else if (e.system) addSystem(e.system);
}

async function main() {
  try {
    state.config = await (await fetch('/config.json')).json();
  } catch {
    return status(explain('unreachable'));
  }
  state.keyPair = await deviceKey();
  state.publicKey = await publicKeyBytes(state.keyPair);
  state.peer = peerId(state.publicKey);
  document.body.dataset.peer = state.peer;
  if (sessionStorage.getItem(MATCH_KEY)) {
    // A reload ends a chat: the old connection is gone, and it is never resurrected.
    sessionStorage.removeItem(MATCH_KEY);
    status('Your previous chat ended when the page was reloaded.');
  }
  const saved = JSON.parse(localStorage.getItem(PROFILE_KEY) || 'null');
  if (saved) {
    $('nickname').value = saved.nickname || '';
    $('bio').value = saved.bio || '';
    $('want').value = saved.want || 'any';
    $('interests').value = (saved.interests || []).join(', ');
    $('hide-ip').checked = !!saved.hideIp;
  }
  state.token = savedToken(state.peer);
  const code = new URLSearchParams(location.hash.slice(1)).get('pair');
  if (code !== null) return openPairing(code);
  dispatch({ type: 'loaded', verified: !!state.token });
}

/** Opened from a terminal's pairing address: show whose key the check is for. */
async function openPairing(code) {
  dispatch({ type: 'loaded', pairing: true });
  $('consent-ok').disabled = true;
  const reply = await pairingInfo(state.config.verifier_url, code);
  if (reply.error || !reply.public_key) {
    const e = reply.error || {};
    document.body.dataset.pairError = e.code || 'internal';
    return status(explain(e.code, e.message));
  }
  state.pair = { code, info: reply };
  $('pair-fingerprint').textContent = reply.fingerprint;
  $('pair-notice').hidden = false;
  if (reply.undisclosed) {
    $('undisclosed').checked = true;
    $('undisclosed').disabled = true;
  }
  $('consent-ok').disabled = false;
  document.body.dataset.pairing = 'ready';
}

/** The key the check is for: the terminal's when pairing, else this browser's. */
function checkedKey() {
  return state.pair ? state.pair.info.public_key : base64url(state.publicKey);
}

// --- verification -------------------------------------------------------------------------

$('consent-ok').onclick = () => dispatch({ type: 'consented' });

async function startCameraScreen() {
  $('verify-error').textContent = '';
  const info = await verifierInfo(state.config.verifier_url);
  state.mode = info && info.verify_mode === 'photo' ? 'photo' : 'active';
  document.body.dataset.verifyMode = state.mode;
  for (const e of document.querySelectorAll('.mode-active')) e.hidden = state.mode !== 'active';
  for (const e of document.querySelectorAll('.mode-photo')) e.hidden = state.mode !== 'photo';
  if (state.mode === 'active') {
    // The camera starts with the check, and stops as soon as its frames are taken.
    $('capture').textContent = 'Start';
    return;
  }
  $('capture').textContent = 'Take the selfie and verify';
  try {
    await startCamera($('camera'));
  } catch {
    $('verify-error').textContent = explain('camera');
  }
}

/** What the verifier's refusal means, with its hint when a step was missed. */
function refusal(error) {
  const e = error || {};
  const hint = e.code === 'challenge_not_followed' && e.message ? ` Next time, ${e.message}.` : '';
  return explain(e.code, e.message) + hint;
}

function refused(error) {
  $('verify-error').textContent = refusal(error);
  document.body.dataset.verifyError = (error && error.code) || 'unknown';
}

/** The verifier's answer, whatever was sent: keep the token, or say why not. */
function answered(reply) {
  status('');
  if (!reply.verified) return refused(reply.error);
  if (state.pair) {
    // The token went to the terminal; this page keeps nothing.
    if (!reply.paired) return refused({ code: 'internal' });
    stopCamera($('camera'));
    return dispatch({ type: 'verified' });
  }
  if (reply.peer_id !== state.peer) {
    $('verify-error').textContent = 'The verifier answered for another device. Try again.';
    return;
  }
  state.token = { token: reply.token, gender: reply.gender, expires_at: reply.expires_at, peer_id: reply.peer_id };
  saveToken(state.token);
  stopCamera($('camera'));
  status('Verified. The pictures have been forgotten.');
  dispatch({ type: 'verified' });
}

function beginAttempt() {
  $('capture').disabled = true;
  $('verify-error').textContent = '';
  delete document.body.dataset.verifyError;
}

async function submitPhoto(photo) {
  beginAttempt();
  status('Checking your photo…');
  const reply = await verify(state.config.verifier_url, { photo, pairCode: state.pair?.code }, checkedKey(),
    $('undisclosed').checked);
  $('capture').disabled = false;
  answered(reply);
}

function showGuide(phase, done) {
  $('guide').hidden = false;
  $('guide-progress').hidden = false;
  $('guide-arrow').textContent = phase.arrow;
  $('guide-text').textContent = phase.text;
  $('guide-progress').value = done;
  document.body.dataset.guide = phase.step || 'look';
}

function hideGuide() {
  $('guide').hidden = true;
  $('guide-progress').hidden = true;
  delete document.body.dataset.guide;
}

/** The head-turn check: steps from the verifier, the guided burst, the answer. */
async function runChallenge() {
  beginAttempt();
  const publicKey = checkedKey();
  const video = $('camera');
  try {
    const challenge = await requestChallenge(state.config.verifier_url, publicKey);
    if (challenge.error || !challenge.challenge_id) return refused(challenge.error);
    let script;
    try {
      script = plan(challenge.steps);
    } catch {
      return refused({ code: 'internal' });
    }
    try {
      await startCamera(video);
    } catch {
      return refused({ code: 'camera' });
    }
    let burst;
    try {
      burst = await captureBurst(video, script, showGuide);
    } catch {
      return refused({ code: 'camera' });
    } finally {
      stopCamera(video);
      hideGuide();
    }
    status('Checking…');
    const evidence = { challengeId: challenge.challenge_id, pairCode: state.pair?.code, ...burst };
    const reply = await verify(state.config.verifier_url, evidence, publicKey, $('undisclosed').checked);
    answered(reply);
  } finally {
    $('capture').disabled = false;
    if (document.body.dataset.verifyError) $('capture').textContent = 'Try again';
  }
}

$('capture').onclick = async () => {
  if (state.mode === 'active') return runChallenge();
  try {
    await submitPhoto(await captureJpeg($('camera')));
  } catch {
    $('verify-error').textContent = explain('camera');
  }
};

$('photo-file').onchange = () => {
  const file = $('photo-file').files[0];
  if (file && state.mode === 'photo') submitPhoto(file);
};

// --- profile ------------------------------------------------------------------------------

/** The rendezvous' profile rules, checked as the person types. */
function checkProfile() {
  const nickname = $('nickname').value.trim();
  const bio = $('bio').value.trim();
  return { nickname, bio, errors: profileErrors(nickname, bio) };
}

function showFieldErrors(errors, onlyTouched) {
  for (const field of ['nickname', 'bio']) {
    const input = $(field);
    if (onlyTouched && !input.dataset.touched) continue;
    $(`${field}-error`).textContent = errors[field] || '';
    input.setAttribute('aria-invalid', errors[field] ? 'true' : 'false');
  }
}

for (const field of ['nickname', 'bio']) {
  $(field).addEventListener('input', () => {
    $(field).dataset.touched = '1';
    showFieldErrors(checkProfile().errors, true);
  });
}

$('profile-form').onsubmit = async e => {
  e.preventDefault();
  const { nickname, bio, errors } = checkProfile();
  $('nickname').dataset.touched = $('bio').dataset.touched = '1';
  showFieldErrors(errors, false);
  if (errors.nickname || errors.bio) return;
  const profile = {
    nickname,
    bio,
    want: $('want').value,
    interests: $('interests').value.split(',').map(s => s.trim()).filter(Boolean).slice(0, MAX_INTERESTS),
    hideIp: $('hide-ip').checked,
  };
  localStorage.setItem(PROFILE_KEY, JSON.stringify(profile));
  dispatch({ type: 'join', profile });
};

// --- rendezvous ---------------------------------------------------------------------------

function rendezvousUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
}

/** Logs in unless a connection is open, then tells the reducer whether a relay is on offer. */
async function connect() {
  if (!(state.rdv && state.rdv.open)) {
    const rdv = new Rendezvous();
    try {
      state.welcome = await rdv.connect(rendezvousUrl(), state.token.token, state.keyPair);
    } catch (e) {
      return dispatch({ type: 'refused', code: e.code, message: e.message });
    }
    state.rdv = rdv;
    rdv.addEventListener('message', e => dispatch({ type: 'server', frame: e.detail }));
    rdv.addEventListener('close', () => {
      if (state.rdv !== rdv) return;
      state.rdv = null;
      dispatch({ type: 'offline' });
    });
    dispatch({ type: 'online' });
  }
  dispatch({ type: 'ready', relay: hasTurn(state.welcome.ice_servers) });
}

$('cancel').onclick = () => dispatch({ type: 'cancel' });

// --- chat ---------------------------------------------------------------------------------

function startChat(frame) {
  const p = frame.partner;
  sessionStorage.setItem(MATCH_KEY, frame.match_id);
  chatBegins(p);
  // The match brings TURN credentials minted for it; the welcome's may have lapsed meanwhile.
  const iceServers = frame.ice_servers && frame.ice_servers.length ? frame.ice_servers : state.welcome.ice_servers;
  const chat = new PeerChat(frame.role, iceServers, data =>
    state.rdv?.send({ type: 'signal', match_id: frame.match_id, data }), { relayOnly: phase.profile.hideIp });
  state.chat = chat;
  const current = () => state.chat === chat;
  chat.addEventListener('open', e => {
    if (!current()) return;
    chatConnected(e.detail);
    dispatch({ type: 'channel_open', matchId: frame.match_id });
    addSystem(`Connected. Say hello to ${p.nickname}!`);
    $('message').focus();
  });
  chat.addEventListener('message', e => {
    $('typing').textContent = '';
    const li = addLine('theirs', e.detail.text);
    if (e.detail.flagged) li.classList.add('flagged');
  });
  chat.addEventListener('ack', e => delivered(e.detail.id));
  chat.addEventListener('typing', e => {
    $('typing').textContent = e.detail.on ? `${p.nickname} is typing…` : '';
  });
  chat.addEventListener('image', e => {
    $('typing').textContent = '';
    addImage('theirs', e.detail.url, `image from ${p.nickname}`);
  });
  chat.addEventListener('refused', e => addSystem(`Something your partner sent was refused: ${e.detail.reason}.`));
  chat.addEventListener('gone', e => dispatch({ type: 'channel_gone', how: e.detail.how, matchId: frame.match_id }));
}

/** The chat is over, whoever ended it: forget its connection. */
function chatOver() {
  state.chat = null;
  sessionStorage.removeItem(MATCH_KEY);
  setTyping(false);
  state.typingOn = false;
}

function setTyping(on) {
  clearTimeout(state.typingTimer);
  if (on) state.typingTimer = setTimeout(() => setTyping(false), TYPING_PAUSE_MS);
  if (on !== state.typingOn && state.chat) {
    state.typingOn = on;
    state.chat.typing(on);
  }
}

$('message').addEventListener('input', () => setTyping($('message').value.length > 0));

$('send-form').onsubmit = e => {
  e.preventDefault();
  const text = $('message').value;
  if (!text.trim() || !state.chat || !phase.match?.connected) return;
  if ([...text].length > MAX_TEXT_CHARS) {
    $('send-error').textContent = `Messages are at most ${MAX_TEXT_CHARS} characters.`;
    return;
  }
  if (hasContactDetails(text) && state.confirmText !== text) {
    state.confirmText = text;
    $('send-error').textContent = explain('contact_details');
    return;
  }
  state.confirmText = null;
  $('send-error').textContent = '';
  const id = state.chat.send(text);
  addLine('mine', text, id);
  $('message').value = '';
  setTyping(false);
};

$('image-file').onchange = async () => {
  const file = $('image-file').files[0];
  $('image-file').value = '';
  if (!file || !state.chat) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  try {
    const id = await state.chat.sendImage(bytes);
    addImage('mine', URL.createObjectURL(file), 'your image', id);
    $('send-error').textContent = '';
  } catch {
    $('send-error').textContent = explain('bad_image');
  }
};

$('next').onclick = () => dispatch({ type: 'next' });
$('leave').onclick = () => dispatch({ type: 'leave' });
$('report').onclick = () => dispatch({ type: 'report' });
$('ended-report').onclick = () => dispatch({ type: 'report' });
$('block').onclick = () => dispatch({ type: 'block' });
$('again').onclick = () => dispatch({ type: 'join' });
// Closing or reloading the page leaves the chat. No clean-up: the match stays in sessionStorage
// so that a reload can say the chat ended.
window.addEventListener('pagehide', () => dispatch({ type: 'pagehide' }));

main();
