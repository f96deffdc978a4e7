// The page's pure rules (web/js/rules.js) against the protocol's shared test vectors: the same
// files the Rust rules are held to (protocol/tests/vectors.rs). Run by page_rules.rs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  countEmoji, hasContactDetails, parseFrame, reconnectDelay, safetyCode, sdpFingerprint, shareableCandidate,
} from '../../web/js/rules.js';

const vectors = name => JSON.parse(readFileSync(new URL(`../../../protocol/vectors/${name}`, import.meta.url)));

test('chat frames', () => {
  const v = vectors('chat_frames.json');
  for (const text of v.valid) {
    const { frame } = parseFrame(text);
    assert.deepEqual(frame, JSON.parse(text), text);
  }
  for (const { why, frame } of v.invalid) {
    assert.equal(parseFrame(frame).frame, undefined, `${why} was accepted: ${frame}`);
  }
});

test('contact details', () => {
  for (const { text, contact } of vectors('contact.json').cases) {
    assert.equal(hasContactDetails(text), contact, JSON.stringify(text));
  }
});

test('safety codes', async () => {
  for (const { mine, theirs, code } of vectors('safety_code.json').cases) {
    assert.equal(await safetyCode(mine, theirs), code, `${mine} / ${theirs}`);
  }
});

test('emoji', () => {
  for (const { text, count } of vectors('emoji.json').cases) {
    assert.equal(countEmoji(text), count, JSON.stringify(text));
  }
});

test('reconnect delays', () => {
  for (const { attempt, jitter, delay_ms } of vectors('reconnect.json').cases) {
    assert.equal(reconnectDelay(attempt, jitter), delay_ms, JSON.stringify({ attempt, jitter }));
  }
});

test('signaling: fingerprints and the candidates that may leave', () => {
  const v = vectors('signaling.json');
  for (const { sdp, fingerprint } of v.fingerprints) {
    assert.equal(sdpFingerprint(sdp), fingerprint, JSON.stringify(sdp));
  }
  for (const { candidate, relay_only, shared } of v.candidates) {
    assert.equal(shareableCandidate(candidate, relay_only), shared, `${candidate} (relay only: ${relay_only})`);
  }
});
