// The page's reducer (web/js/phase.js): sequences of events, the states they lead to and the
// frames they send, including the races a page meets on a real network. Run by page_rules.rs.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { initial, joinFrame, LOST_GRACE_MS, step } from '../../web/js/phase.js';
import { RECONNECT_BASE_MS, SETUP_TIMEOUT_MS, VERIFY_AGAIN_ERRORS } from '../../web/js/protocol.gen.js';

const profile = { nickname: 'Ada', bio: 'likes maths', want: 'any', interests: ['jazz'], hideIp: false };
const matched = (id = 'm1') => ({
  type: 'matched', match_id: id, receipt: `r-${id}`, role: 'offerer',
  partner: { nickname: 'Bo', bio: 'hi', gender: 'M', common_interests: [] },
});

/** Runs `events` from `state`; the final state and every effect, in order. */
function run(events, state = initial) {
  const effects = [];
  for (const event of events) {
    const out = step(state, event);
    state = out.state;
    effects.push(...out.effects);
  }
  return { state, effects };
}
const sent = effects => effects.filter(e => e.send).map(e => e.send);
const server = frame => ({ type: 'server', frame });

/** A page that is waiting in the queue, logged in. */
const waiting = () => run([{ type: 'loaded', verified: true }, { type: 'join', profile }, { type: 'online' }, { type: 'ready', relay: true }]);
/** A page in a chat of match `id`. */
const chatting = (id = 'm1') => run([server(matched(id))], waiting().state);

test('a verified page joins once it is logged in', () => {
  const { state, effects } = waiting();
  assert.equal(state.phase, 'waiting');
  assert.deepEqual(sent(effects), [joinFrame(profile)]);
  assert.ok(effects.some(e => e.connect));
});

test('an unverified page starts at consent, and verifying leads to the profile', () => {
  let { state } = run([{ type: 'loaded', verified: false }]);
  assert.equal(state.phase, 'consent');
  ({ state } = run([{ type: 'consented' }, { type: 'verified' }], state));
  assert.equal(state.phase, 'profile');
});

test('a page that verifies for a terminal ends paired and never joins', () => {
  let { state } = run([{ type: 'loaded', verified: true, pairing: true }]);
  assert.equal(state.phase, 'consent', 'a token of its own does not skip the check');
  ({ state } = run([{ type: 'consented' }, { type: 'verified' }], state));
  assert.equal(state.phase, 'paired');
  const { state: after, effects } = run([{ type: 'join', profile }], state);
  assert.equal(after.phase, 'paired');
  assert.deepEqual(effects, []);
});

test('a match that arrives after a cancel is given back at once', () => {
  const { state, effects } = run([{ type: 'cancel' }, server(matched('late'))], waiting().state);
  assert.equal(state.phase, 'profile');
  assert.deepEqual(sent(effects), [{ type: 'cancel' }, { type: 'leave', match_id: 'late' }]);
  assert.equal(state.match, null);
});

test('a login that finishes after a cancel joins nothing', () => {
  const begun = run([{ type: 'loaded', verified: true }, { type: 'join', profile }]).state;
  const { state, effects } = run([{ type: 'cancel' }, { type: 'online' }, { type: 'ready', relay: true }], begun);
  assert.equal(state.phase, 'profile');
  assert.deepEqual(sent(effects), []);
});

test('hiding the address without a relay on offer is refused before joining', () => {
  const begun = run([{ type: 'loaded', verified: true }, { type: 'join', profile: { ...profile, hideIp: true } }, { type: 'online' }]).state;
  const { state, effects } = run([{ type: 'ready', relay: false }], begun);
  assert.equal(state.phase, 'profile');
  assert.deepEqual(sent(effects), []);
  assert.match(effects.find(e => e.profileError).profileError, /relay/);
});

test('a partner who left an earlier chat does not end this one', () => {
  const first = chatting('m1').state;
  const second = run([{ type: 'leave' }, { type: 'join' }, { type: 'ready', relay: true }, server(matched('m2'))], first).state;
  assert.equal(second.match.id, 'm2');
  const { state, effects } = run([server({ type: 'partner_left', match_id: 'm1' }), server({ type: 'signal', match_id: 'm1', data: {} })], second);
  assert.equal(state.phase, 'chat');
  assert.deepEqual(effects, []);
});

test('the partner leaving ends the chat without telling the server again', () => {
  const { state, effects } = run([server({ type: 'partner_left', match_id: 'm1' })], chatting().state);
  assert.equal(state.phase, 'ended');
  assert.equal(state.ended.why, 'Your partner left.');
  assert.deepEqual(sent(effects), []);
  assert.ok(effects.some(e => e.chat === 'close'));
  assert.equal(state.lastReceipt, 'r-m1', 'the ended chat can still be reported');
});

test('a lost channel waits for the server, and a late grace timer spares the next chat', () => {
  const { state: s1, effects } = run([{ type: 'channel_gone', how: 'lost', matchId: 'm1' }], chatting().state);
  assert.equal(s1.phase, 'chat', 'the server may still say the partner left');
  const timer = effects.find(e => e.after !== undefined);
  assert.equal(timer.after, LOST_GRACE_MS);
  // The server said so first; then the next chat began before the grace ran out.
  const s2 = run([server({ type: 'partner_left', match_id: 'm1' }), { type: 'join' }, { type: 'ready', relay: true }, server(matched('m2'))], s1).state;
  const late = run([timer.event], s2);
  assert.equal(late.state.phase, 'chat');
  assert.equal(late.state.match.id, 'm2');
  // Without the server's word, the grace ends the chat and tells the server.
  const lost = run([timer.event], s1);
  assert.equal(lost.state.ended.why, 'The connection to your partner was lost.');
  assert.deepEqual(sent(lost.effects), [{ type: 'leave', match_id: 'm1' }]);
});

test('a channel lost while offline ends the chat at once', () => {
  const { effects } = run([{ type: 'offline' }, { type: 'channel_gone', how: 'lost', matchId: 'm1' }], chatting().state);
  assert.equal(effects.find(e => e.after !== undefined).after, 0);
});

test('a dropped rendezvous puts a waiting page back in the queue with backoff, not a chatting one', () => {
  const { state, effects } = run([{ type: 'offline' }, { type: 'offline' }], waiting().state);
  const delays = effects.filter(e => e.after !== undefined);
  assert.equal(delays.length, 2);
  assert.ok(delays.every(d => d.event.type === 'rejoin'));
  assert.ok(delays[1].after > delays[0].after * 1.4, `backoff ${delays.map(d => d.after)}`);
  assert.ok(delays[0].after >= RECONNECT_BASE_MS * 0.8);
  assert.equal(state.retry, 2);
  assert.equal(run([{ type: 'online' }], state).state.retry, 0);
  const chat = run([{ type: 'offline' }], chatting().state);
  assert.equal(chat.state.phase, 'chat');
  assert.deepEqual(chat.effects, []);
});

test('a refused token sends the person back to verify; other refusals to the profile', () => {
  for (const code of VERIFY_AGAIN_ERRORS) {
    const { state, effects } = run([{ type: 'refused', code }], waiting().state);
    assert.equal(state.phase, 'consent', code);
    assert.ok(effects.some(e => e.forgetToken), code);
  }
  const { state, effects } = run([server({ type: 'error', code: 'daily_limit', message: 'enough for today' })], waiting().state);
  assert.equal(state.phase, 'profile');
  assert.ok(!effects.some(e => e.forgetToken));
  assert.ok(effects.some(e => e.status));
});

test('an invalid profile field goes back to that field', () => {
  const { state, effects } = run([server({ type: 'error', code: 'invalid_profile', field: 'bio', message: 'too long' })], waiting().state);
  assert.equal(state.phase, 'profile');
  assert.deepEqual(effects.find(e => e.fieldError).fieldError, { field: 'bio', message: 'too long' });
});

test('next says goodbye, leaves and joins again in one step', () => {
  const { state, effects } = run([{ type: 'next' }], chatting().state);
  assert.equal(state.phase, 'waiting');
  assert.equal(state.match, null);
  assert.ok(effects.findIndex(e => e.chat === 'bye') < effects.findIndex(e => e.connect));
  assert.deepEqual(sent(effects), [{ type: 'leave', match_id: 'm1' }]);
});

test('block sends the receipt, then the chat ends; a report after it is sent once', () => {
  const { state, effects } = run([{ type: 'block' }], chatting().state);
  assert.equal(state.phase, 'ended');
  assert.deepEqual(sent(effects), [{ type: 'block', receipt: 'r-m1' }, { type: 'leave', match_id: 'm1' }]);
  const reported = run([{ type: 'report' }, server({ type: 'reported' })], state);
  assert.equal(sent(reported.effects)[0].receipt, 'r-m1');
  assert.equal(reported.state.reported, true);
  assert.match(reported.state.ended.note, /report was received/);
});

test('the setup timeout speaks only for a chat that never connected', () => {
  const { state, effects } = chatting();
  const timer = effects.find(e => e.event?.type === 'setup_timeout');
  assert.equal(timer.after, SETUP_TIMEOUT_MS);
  assert.ok(run([timer.event], state).effects.some(e => e.system));
  const open = run([{ type: 'channel_open', matchId: 'm1' }], state).state;
  assert.deepEqual(run([timer.event], open).effects, []);
});

test('a join the matchmaker cannot take is tried again when it says, unless cancelled meanwhile', () => {
  const refused = run([server({ type: 'error', code: 'unavailable', message: 'down', retry_after: 2 })], waiting().state);
  assert.equal(refused.state.phase, 'waiting');
  const timer = refused.effects.find(e => e.after !== undefined);
  assert.deepEqual(timer, { after: 2000, event: { type: 'rejoin' } });
  const again = run([timer.event, { type: 'ready', relay: true }], refused.state);
  assert.deepEqual(sent(again.effects), [joinFrame(profile)]);
  // Cancelled before the timer: the timer does nothing.
  const cancelled = run([{ type: 'cancel' }, timer.event], refused.state);
  assert.equal(cancelled.state.phase, 'profile');
  assert.deepEqual(sent(cancelled.effects), [{ type: 'cancel' }]);
  // A dropped connection's timer does not put a cancelled page back in the queue either.
  const dropped = run([{ type: 'offline' }, { type: 'cancel' }, { type: 'rejoin' }], waiting().state);
  assert.equal(dropped.state.phase, 'profile');
});
