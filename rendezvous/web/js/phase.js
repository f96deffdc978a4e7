// Where the page is and what it does next: one pure reducer, `step(state, event)`, that returns
// the next state and the effects to carry out (frames to send, timers, what to tell the person).
// No DOM, no sockets, no clock: main.js carries out the effects, screens.js draws the state, and
// page/phase.test.mjs drives the races (a match after a cancel, a partner who left an old chat,
// a lost channel whose grace ended after the next chat began) as plain sequences of events.
//
// Phases are the screens: consent → camera → profile → waiting → chat → ended; a page opened
// to verify for a terminal (a pairing code) goes consent → camera → paired, and never joins.

import { SETUP_TIMEOUT_MS, VERIFY_AGAIN_ERRORS } from './protocol.gen.js';
import { reconnectDelay } from './rules.js';
import { explain } from './messages.js';

/** How long a dropped channel waits for the server's `partner_left` before it is called lost. */
export const LOST_GRACE_MS = 2000;

export const initial = Object.freeze({
  phase: 'start',
  /** {nickname, bio, want, interests, hideIp}, once the profile form was sent. */
  profile: null,
  /** {id, receipt, partner, connected} while chatting. */
  match: null,
  /** The receipt of the last match, for a report or a block after it ended. */
  lastReceipt: null,
  reported: false,
  /** Whether a logged-in rendezvous connection is open. */
  online: false,
  /** Reconnection attempts since the last successful login. */
  retry: 0,
  /** Why the last chat ended, and a later note about it (a report received, say). */
  ended: { why: '', note: '' },
  /** Verifying for a terminal: the token is the terminal's, and this page never chats. */
  pairing: false,
});

/** The rendezvous' `join` frame for `profile`. */
export function joinFrame(profile) {
  return {
    type: 'join',
    profile: { nickname: profile.nickname, bio: profile.bio },
    want: profile.want,
    interests: profile.interests,
    transports: ['webrtc'],
  };
}

/**
 * The next state and its effects. Effects are plain objects, carried out in order:
 * `{send}` a frame to the rendezvous · `{connect}` log in unless online, then dispatch `ready` ·
 * `{after, event}` dispatch `event` in `after` ms · `{status}` · `{waitingText}` ·
 * `{profileError}` · `{fieldError: {field, message}}` · `{forgetToken}` · `{startCamera}` ·
 * `{startChat: matched}` · `{signal: data}` · `{chat: 'bye' | 'close'}` · `{system: text}`.
 */
export function step(state, event) {
  const out = [];
  const to = changes => ({ state: { ...state, ...changes }, effects: out });
  const same = () => ({ state, effects: out });
  const chatting = id => state.phase === 'chat' && state.match && state.match.id === id;
  const leave = () => {
    if (state.match && state.online) out.push({ send: { type: 'leave', match_id: state.match.id } });
  };
  const ended = (why, changes = {}) =>
    to({ phase: 'ended', match: null, ended: { why, note: '' }, ...changes });

  switch (event.type) {
    case 'loaded':
      if (event.pairing) return to({ phase: 'consent', pairing: true });
      return to({ phase: event.verified ? 'profile' : 'consent' });
    case 'consented':
      out.push({ startCamera: true });
      return to({ phase: 'camera' });
    case 'verified':
      return to({ phase: state.pairing ? 'paired' : 'profile' });

    case 'rejoin':
      // A timer's join: only if the person is still waiting (not if they cancelled meanwhile).
      if (state.phase !== 'waiting') return same();
    // falls through
    case 'join': {
      if (state.pairing) return same();
      const profile = event.profile || state.profile;
      if (!profile) return to({ phase: 'profile' });
      out.push({ waitingText: 'Connecting…' }, { connect: true });
      return to({ phase: 'waiting', profile });
    }
    case 'online':
      return to({ online: true, retry: 0 });
    case 'ready':
      // Cancelled while connecting: nothing to join.
      if (state.phase !== 'waiting') return same();
      // Refused here, before a partner's match is used up on a connection that cannot be made.
      if (state.profile.hideIp && !event.relay) {
        out.push({ profileError: explain('no_relay') });
        return to({ phase: 'profile' });
      }
      out.push({ profileError: '' }, { status: '' }, { send: joinFrame(state.profile) });
      return same();
    case 'offline':
      if (state.phase !== 'waiting') return to({ online: false });
      // Waiting users are put back in the queue; a chat in progress does not need the server.
      out.push({ waitingText: 'Reconnecting…' }, { after: reconnectDelay(state.retry), event: { type: 'rejoin' } });
      return to({ online: false, retry: state.retry + 1 });
    case 'refused':
      return refused(state, event, out);
    case 'cancel':
      if (state.phase !== 'waiting') return same();
      if (state.online) out.push({ send: { type: 'cancel' } });
      return to({ phase: 'profile' });

    case 'server':
      return server(state, event.frame, out, { to, same, chatting, ended });

    case 'channel_open':
      if (!chatting(event.matchId)) return same();
      return to({ match: { ...state.match, connected: true } });
    case 'setup_timeout':
      if (chatting(event.matchId) && !state.match.connected) out.push({ system: explain('connect_failed') });
      return same();
    case 'channel_gone':
      if (!chatting(event.matchId)) return same();
      if (event.how === 'left') {
        leave();
        out.push({ chat: 'close' });
        return ended('Your partner left.');
      }
      // A closed page closes its channel and its server socket at the same moment, and the
      // channel often tells first: give the server a moment to say the partner left.
      out.push({ after: state.online ? LOST_GRACE_MS : 0, event: { type: 'channel_lost', matchId: event.matchId } });
      return same();
    case 'channel_lost':
      if (!chatting(event.matchId)) return same();
      leave();
      out.push({ chat: 'close' });
      return ended('The connection to your partner was lost.');

    case 'leave':
      if (state.phase !== 'chat') return same();
      out.push({ chat: 'bye' });
      leave();
      return ended('You left the chat.');
    case 'next': {
      if (state.phase === 'chat') {
        out.push({ chat: 'bye' });
        leave();
      }
      const joined = step({ ...state, match: null }, { type: 'join' });
      return { state: joined.state, effects: [...out, ...joined.effects] };
    }
    case 'block':
      if (state.lastReceipt && state.online) out.push({ send: { type: 'block', receipt: state.lastReceipt } });
      if (state.phase === 'chat') {
        out.push({ chat: 'bye' });
        leave();
      }
      return ended('You blocked this person.');
    case 'report':
      if (!state.lastReceipt || !state.online) return note(state, explain('unreachable'), out);
      out.push({ send: { type: 'report', receipt: state.lastReceipt, reason: 'reported from the web page' } });
      return to({ reported: true });
    case 'pagehide':
      // Closing or reloading the page leaves the chat; the state does not matter any more.
      if (state.phase === 'chat') {
        out.push({ chat: 'bye' });
        leave();
      }
      return same();
    default:
      return same();
  }
}

/** A frame from the rendezvous. */
function server(state, frame, out, { to, same, chatting, ended }) {
  switch (frame.type) {
    case 'queued':
      if (state.phase === 'waiting') out.push({ waitingText: `${frame.waiting} waiting, including you` });
      return same();
    case 'matched':
      if (state.phase !== 'waiting') {
        // Cancelled (or matched twice) meanwhile: give the match back at once.
        if (state.online) out.push({ send: { type: 'leave', match_id: frame.match_id } });
        return same();
      }
      out.push({ startChat: frame }, { after: SETUP_TIMEOUT_MS, event: { type: 'setup_timeout', matchId: frame.match_id } });
      return to({
        phase: 'chat',
        match: { id: frame.match_id, receipt: frame.receipt, partner: frame.partner, connected: false },
        lastReceipt: frame.receipt,
        reported: false,
      });
    case 'signal':
      if (chatting(frame.match_id)) out.push({ signal: frame.data });
      return same();
    case 'partner_left':
      if (!chatting(frame.match_id)) return same();
      out.push({ chat: 'close' });
      return ended('Your partner left.');
    case 'reported':
      return note(state, 'Thank you: your report was received.', out);
    case 'blocked':
      return note(state, 'Blocked: you will not be matched with this person again.', out);
    case 'error':
      if (frame.code === 'invalid_profile' && frame.field) {
        out.push({ fieldError: { field: frame.field, message: frame.message } });
        return to({ phase: 'profile' });
      }
      // The chat was over already.
      if (frame.code === 'not_in_match') return same();
      // The matchmaker could not take the join: still waiting, it joins again when told.
      if (frame.code === 'unavailable' && state.phase === 'waiting') {
        const after = Math.min(Math.max(Number(frame.retry_after) || 1, 1), 60) * 1000;
        out.push({ waitingText: explain('unavailable') }, { after, event: { type: 'rejoin' } });
        return same();
      }
      if (state.phase === 'waiting') return refused(state, frame, out);
      return note(state, explain(frame.code, frame.message), out);
    default:
      return same();
  }
}

/** A refusal at login or join: say why, and go where it can be fixed. */
function refused(state, { code = 'unreachable', message }, out) {
  out.push({ status: explain(code, message) });
  if (VERIFY_AGAIN_ERRORS.includes(code)) {
    out.push({ forgetToken: true });
    return { state: { ...state, phase: 'consent' }, effects: out };
  }
  if (state.phase === 'waiting') return { state: { ...state, phase: 'profile' }, effects: out };
  return { state, effects: out };
}

/** Something to tell the person: in the chat while there is one, else on the end screen. */
function note(state, text, out) {
  if (state.phase === 'chat') {
    out.push({ system: text });
    return { state, effects: out };
  }
  return { state: { ...state, ended: { ...state.ended, note: text } }, effects: out };
}
