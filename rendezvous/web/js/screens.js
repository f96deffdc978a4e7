// Everything the page draws: which screen shows, the status line, the end screen and the chat's
// lines. `render` follows the reducer's state (phase.js); the rest is called by main.js as
// effects and chat events arrive. Partner-controlled strings only ever reach the page through
// `textContent`, never as markup.
//
// The current screen is also in `document.body.dataset.screen`, which the browser tests wait on.

export const $ = id => document.getElementById(id);

function show(screen) {
  for (const s of document.querySelectorAll('.screen')) s.hidden = s.id !== `screen-${screen}`;
  document.body.dataset.screen = screen;
  const first = $(`screen-${screen}`).querySelector('button, input, select, textarea');
  if (first && screen !== 'chat') first.focus();
}

export function status(text) {
  $('status').textContent = text || '';
}

/** Draws what changed between two states of the reducer. */
export function render(prev, state) {
  if (prev.phase === 'chat' && state.phase !== 'chat') {
    delete document.body.dataset.connected;
    delete document.body.dataset.path;
    $('path').textContent = '';
  }
  if (state.phase === 'ended') {
    $('ended-why').textContent = state.ended.why;
    $('ended-note').textContent = state.ended.note;
  }
  $('ended-report').hidden = !state.lastReceipt || state.reported;
  if (prev.phase !== state.phase && state.phase !== 'start') show(state.phase);
}

function genderWord(g) {
  return g === 'F' ? 'woman' : g === 'M' ? 'man' : 'gender undisclosed';
}

/** A fresh chat screen for the partner of `matched`. */
export function chatBegins(partner) {
  $('partner-name').textContent = partner.nickname;
  const common = partner.common_interests.length ? ` · you both like ${partner.common_interests.join(', ')}` : '';
  $('partner-about').textContent = `${genderWord(partner.gender)} · ${partner.bio}${common}`;
  $('safety-code').textContent = '…';
  $('messages').replaceChildren();
  $('typing').textContent = '';
  $('send-error').textContent = '';
  addSystem('Connecting to your partner…');
}

/** The channel is open: the safety code, and how the connection goes. */
export function chatConnected({ safetyCode, path, local, remote }) {
  $('safety-code').textContent = safetyCode;
  document.body.dataset.connected = 'yes';
  document.body.dataset.path = `${path} ${local} ${remote}`;
  $('path').textContent = path === 'relayed'
    ? 'Through a relay: your address is hidden from your partner.'
    : 'Direct: you and your partner can see each other\'s IP address.';
}

export function addLine(who, text, id) {
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

export function addSystem(text) {
  return addLine('system', text);
}

export function addImage(who, url, alt, id) {
  const li = addLine(who, '', id);
  const img = document.createElement('img');
  img.src = url;
  img.alt = alt;
  li.prepend(img);
  return li;
}

/** The partner received message `id`. */
export function delivered(id) {
  const tick = document.querySelector(`#messages li[data-id="${CSS.escape(id)}"] .tick`);
  if (tick) {
    tick.textContent = '✓';
    tick.title = 'delivered';
    tick.parentElement.dataset.delivered = 'yes';
  }
}
