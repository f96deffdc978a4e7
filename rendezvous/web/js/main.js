// The page: consent → camera → profile → waiting → chat → ended. The current screen is also in
// `document.body.dataset.screen`, which the browser tests wait on.

import { deviceKey, publicKeyBytes, peerId, base64url, savedToken, saveToken, forgetToken } from './identity.js';
import { startCamera, stopCamera, captureJpeg, verify } from './verify.js';
import { Rendezvous } from './rendezvous.js';
import { PeerChat, hasTurn } from './chat.js';
import { MAX_INTERESTS, MAX_TEXT_CHARS, SETUP_TIMEOUT_MS, VERIFY_AGAIN_ERRORS } from './protocol.gen.js';
import { hasContactDetails, profileErrors, reconnectDelay } from './rules.js';
import { explain } from './messages.js';

const $ = id => document.getElementById(id);
const MATCH_KEY = 'anonchat.match';
/** How long a dropped channel waits for the server's `partner_left` before it is called lost. */
const LOST_GRACE_MS = 2000;
const PROFILE_KEY = 'anonchat.profile';
const TYPING_PAUSE_MS = 4000;

const state = {
  config: null,
  keyPair: null,
  publicKey: null,
  peer: null,
  token: null,
  rdv: null,
  welcome: null,
  profile: null,
  phase: 'idle', // idle | waiting | chatting
  match: null, // {id, receipt, partner}
  lastReceipt: null,
  reported: false,
  chat: null,
  typingOn: false,
  typingTimer: null,
  confirmText: null,
  retry: 0,
  lostTimer: null,
};

function show(screen) {
  for (const s of document.querySelectorAll('.screen')) s.hidden = s.id !== `screen-${screen}`;
  document.body.dataset.screen = screen;
  const first = $(`screen-${screen}`).querySelector('button, input, select, textarea');
  if (first && screen !== 'chat') first.focus();
}

function status(text) {
  $('status').textContent = text || '';
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
  show(state.token ? 'profile' : 'consent');
}

// --- verification -------------------------------------------------------------------------

$('consent-ok').onclick = async () => {
  show('camera');
  $('verify-error').textContent = '';
  try {
    await startCamera($('camera'));
  } catch {
    $('verify-error').textContent = explain('camera');
  }
};

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
  show('profile');
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
  state.profile = {
    nickname,
    bio,
    want: $('want').value,
    interests: $('interests').value.split(',').map(s => s.trim()).filter(Boolean).slice(0, MAX_INTERESTS),
    hideIp: $('hide-ip').checked,
  };
  localStorage.setItem(PROFILE_KEY, JSON.stringify(state.profile));
  await join();
};

// --- rendezvous ---------------------------------------------------------------------------

function rendezvousUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
}

async function ensureConnected() {
  if (state.rdv && state.rdv.open) return true;
  const rdv = new Rendezvous();
  try {
    state.welcome = await rdv.connect(rendezvousUrl(), state.token.token, state.keyPair);
  } catch (e) {
    return refused(e);
  }
  state.rdv = rdv;
  rdv.addEventListener('message', e => onServer(e.detail));
  rdv.addEventListener('close', () => {
    if (state.rdv !== rdv) return;
    state.rdv = null;
    // Waiting users are put back in the queue; a chat in progress does not need the server.
    if (state.phase === 'waiting') {
      $('waiting-count').textContent = 'Reconnecting…';
      setTimeout(join, reconnectDelay(state.retry++));
    }
  });
  state.retry = 0;
  return true;
}

/** A refusal at login or join: say why, and go where it can be fixed. */
function refused(e) {
  const code = e.code || 'unreachable';
  if (VERIFY_AGAIN_ERRORS.includes(code)) {
    forgetToken();
    state.token = null;
    show('consent');
  } else if (state.phase === 'waiting') {
    show('profile');
  }
  state.phase = 'idle';
  status(explain(code, e.message));
  return false;
}

async function join() {
  if (!state.profile) return show('profile');
  state.phase = 'waiting';
  show('waiting');
  $('waiting-count').textContent = 'Connecting…';
  if (!(await ensureConnected())) return;
  // Refused here, before a partner's match is used up on a connection that cannot be made.
  if (state.profile.hideIp && !hasTurn(state.welcome.ice_servers)) {
    show('profile');
    state.phase = 'idle';
    $('profile-error').textContent = explain('no_relay');
    return;
  }
  $('profile-error').textContent = '';
  status('');
  state.rdv.send({ type: 'join', profile: { nickname: state.profile.nickname, bio: state.profile.bio }, want: state.profile.want, interests: state.profile.interests, transports: ['webrtc'] });
}

$('cancel').onclick = () => {
  if (state.rdv) state.rdv.send({ type: 'cancel' });
  state.phase = 'idle';
  show('profile');
};

function onServer(frame) {
  switch (frame.type) {
    case 'queued':
      $('waiting-count').textContent = `${frame.waiting} waiting, including you`;
      return;
    case 'matched':
      if (state.phase !== 'waiting') {
        state.rdv.send({ type: 'leave', match_id: frame.match_id });
        return;
      }
      return startChat(frame);
    case 'signal':
      if (state.chat && state.match && frame.match_id === state.match.id) state.chat.signal(frame.data);
      return;
    case 'partner_left':
      if (state.match && frame.match_id === state.match.id) endChat('Your partner left.', false);
      return;
    case 'reported':
      note('Thank you: your report was received.');
      return;
    case 'blocked':
      note('Blocked: you will not be matched with this person again.');
      return;
    case 'error':
      if (frame.code === 'invalid_profile' && frame.field) {
        show('profile');
        state.phase = 'idle';
        $(`${frame.field}-error`).textContent = frame.message;
        $(frame.field).focus();
      } else if (frame.code === 'not_in_match') {
        // the chat was over already
      } else if (state.phase === 'waiting') {
        refused(frame);
      } else {
        note(explain(frame.code, frame.message));
      }
      return;
  }
}

function note(text) {
  if (state.phase === 'chatting') addSystem(text);
  else $('ended-note').textContent = text;
}

// --- chat ---------------------------------------------------------------------------------

function genderWord(g) {
  return g === 'F' ? 'woman' : g === 'M' ? 'man' : 'gender undisclosed';
}

function startChat(frame) {
  state.phase = 'chatting';
  state.match = { id: frame.match_id, receipt: frame.receipt, partner: frame.partner };
  state.lastReceipt = frame.receipt;
  state.reported = false;
  sessionStorage.setItem(MATCH_KEY, frame.match_id);
  const p = frame.partner;
  $('partner-name').textContent = p.nickname;
  $('partner-about').textContent = `${genderWord(p.gender)} · ${p.bio}` + (p.common_interests.length ? ` · you both like ${p.common_interests.join(', ')}` : '');
  $('safety-code').textContent = '…';
  $('messages').replaceChildren();
  $('typing').textContent = '';
  $('send-error').textContent = '';
  addSystem('Connecting to your partner…');
  show('chat');
  // The match brings TURN credentials minted for it; the welcome's may have lapsed meanwhile.
  const iceServers = frame.ice_servers && frame.ice_servers.length ? frame.ice_servers : state.welcome.ice_servers;
  const chat = new PeerChat(frame.role, iceServers, data =>
    state.rdv && state.rdv.send({ type: 'signal', match_id: frame.match_id, data }), { relayOnly: state.profile.hideIp });
  state.chat = chat;
  chat.addEventListener('open', e => {
    $('safety-code').textContent = e.detail.safetyCode;
    document.body.dataset.connected = 'yes';
    document.body.dataset.path = `${e.detail.path} ${e.detail.local} ${e.detail.remote}`;
    $('path').textContent = e.detail.path === 'relayed'
      ? 'Through a relay: your address is hidden from your partner.'
      : 'Direct: you and your partner can see each other\'s IP address.';
    addSystem(`Connected. Say hello to ${p.nickname}!`);
    $('message').focus();
  });
  chat.addEventListener('message', e => {
    $('typing').textContent = '';
    const li = addLine('theirs', e.detail.text);
    if (e.detail.flagged) li.classList.add('flagged');
  });
  chat.addEventListener('ack', e => {
    const tick = document.querySelector(`#messages li[data-id="${CSS.escape(e.detail.id)}"] .tick`);
    if (tick) {
      tick.textContent = '✓';
      tick.title = 'delivered';
      tick.parentElement.dataset.delivered = 'yes';
    }
  });
  chat.addEventListener('typing', e => {
    $('typing').textContent = e.detail.on ? `${p.nickname} is typing…` : '';
  });
  chat.addEventListener('image', e => {
    $('typing').textContent = '';
    addImage('theirs', e.detail.url, `image from ${p.nickname}`);
  });
  chat.addEventListener('refused', e => addSystem(`Something your partner sent was refused: ${e.detail.reason}.`));
  chat.addEventListener('gone', e => {
    if (state.chat !== chat) return;
    if (e.detail.how === 'left') return endChat('Your partner left.', true);
    // A closed page closes its channel and its server socket at the same moment, and the channel
    // often tells first: give the server a moment to say the partner left before calling it lost.
    clearTimeout(state.lostTimer);
    state.lostTimer = setTimeout(() => {
      if (state.chat === chat) endChat('The connection to your partner was lost.', true);
    }, state.rdv ? LOST_GRACE_MS : 0);
  });
  setTimeout(() => {
    if (state.chat === chat && document.body.dataset.connected !== 'yes') {
      addSystem(explain('connect_failed'));
    }
  }, SETUP_TIMEOUT_MS);
}

function addLine(who, text, id) {
  const li = document.createElement('li');
  li.className = who;
  li.textContent = text;
  if (id) {
    li.dataset.id = id;
    const tick = document.createElement('span');
    tick.className = 'tick';
    tick.textContent = '·';
    tick.title = 'sent';
    li.append(tick);
  }
  $('messages').append(li);
  li.scrollIntoView({ block: 'end' });
  return li;
}

function addSystem(text) {
  return addLine('system', text);
}

function addImage(who, url, alt, id) {
  const li = addLine(who, '', id);
  const img = document.createElement('img');
  img.src = url;
  img.alt = alt;
  li.prepend(img);
  return li;
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
  if (!text.trim() || !state.chat || document.body.dataset.connected !== 'yes') return;
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

/** Tells the partner (bye) and the server (leave) that this side is leaving the chat. */
function sayGoodbye() {
  if (state.chat) state.chat.end();
  if (state.match && state.rdv) state.rdv.send({ type: 'leave', match_id: state.match.id });
}

/** Ends the current chat from this side. */
function leaveChat() {
  sayGoodbye();
  cleanUp();
}

function cleanUp() {
  clearTimeout(state.lostTimer);
  state.chat = null;
  state.match = null;
  state.phase = 'idle';
  sessionStorage.removeItem(MATCH_KEY);
  delete document.body.dataset.connected;
  delete document.body.dataset.path;
  $('path').textContent = '';
  setTyping(false);
  state.typingOn = false;
}

function endChat(why, tellServer) {
  if (tellServer && state.match && state.rdv) state.rdv.send({ type: 'leave', match_id: state.match.id });
  if (state.chat) state.chat.close();
  cleanUp();
  $('ended-why').textContent = why;
  $('ended-note').textContent = '';
  $('ended-report').hidden = !state.lastReceipt || state.reported;
  show('ended');
}

function report() {
  if (!state.lastReceipt || !state.rdv) return note(explain('unreachable'));
  state.rdv.send({ type: 'report', receipt: state.lastReceipt, reason: 'reported from the web page' });
  state.reported = true;
  $('ended-report').hidden = true;
}

$('next').onclick = () => {
  leaveChat();
  join();
};
$('leave').onclick = () => {
  leaveChat();
  $('ended-why').textContent = 'You left the chat.';
  $('ended-note').textContent = '';
  $('ended-report').hidden = !state.lastReceipt || state.reported;
  show('ended');
};
$('report').onclick = report;
$('ended-report').onclick = report;
$('block').onclick = () => {
  if (state.lastReceipt && state.rdv) state.rdv.send({ type: 'block', receipt: state.lastReceipt });
  leaveChat();
  $('ended-why').textContent = 'You blocked this person.';
  $('ended-note').textContent = '';
  $('ended-report').hidden = !state.lastReceipt || state.reported;
  show('ended');
};
$('again').onclick = () => join();
// Closing or reloading the page leaves the chat. No clean-up: the match stays in sessionStorage
// so that a reload can say the chat ended.
window.addEventListener('pagehide', sayGoodbye);

main();
