// The page's wiring: DOM events and server frames become the reducer's events (phase.js), and
// its effects are carried out here; screens.js draws. Consent → camera → profile → waiting →
// chat → ended.

import { deviceKey, publicKeyBytes, peerId, base64url, savedToken, saveToken, forgetToken } from './identity.js';
import { startCamera, stopCamera, captureJpeg, verify } from './verify.js';
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
  keyPair: null,
  publicKey: null,
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
  dispatch({ type: 'loaded', verified: !!state.token });
}

// --- verification -------------------------------------------------------------------------

$('consent-ok').onclick = () => dispatch({ type: 'consented' });

async function startCameraScreen() {
  $('verify-error').textContent = '';
  try {
    await startCamera($('camera'));
  } catch {
    $('verify-error').textContent = explain('camera');
  }
}

async function submitPhoto(photo) {
  $('capture').disabled = true;
  $('verify-error').textContent = '';
  status('Checking your selfie…');
  const reply = await verify(state.config.verifier_url, photo, base64url(state.publicKey), $('undisclosed').checked);
  $('capture').disabled = false;
  status('');
  if (!reply.verified) {
    const e = reply.error || {};
    $('verify-error').textContent = explain(e.code, e.message);
    document.body.dataset.verifyError = e.code || 'unknown';
    return;
  }
  if (reply.peer_id !== state.peer) {
    $('verify-error').textContent = 'The verifier answered for another device. Try again.';
    return;
  }
  state.token = { token: reply.token, gender: reply.gender, expires_at: reply.expires_at, peer_id: reply.peer_id };
  saveToken(state.token);
  stopCamera($('camera'));
  status('Verified. Your selfie has been forgotten.');
  dispatch({ type: 'verified' });
}

$('capture').onclick = async () => {
  try {
    await submitPhoto(await captureJpeg($('camera')));
  } catch {
    $('verify-error').textContent = explain('camera');
  }
};

$('photo-file').onchange = () => {
  const file = $('photo-file').files[0];
  if (file) submitPhoto(file);
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
