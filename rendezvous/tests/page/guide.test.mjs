// The head-turn script of the page (web/js/guide.js): pacing from the protocol, prompts in the
// commanded order, arrows for a mirrored preview, and refusal of steps it cannot guide.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dueAt, phaseAt, plan } from '../../web/js/guide.js';
import { FRAME_INTERVAL_MS, LOOK_MS, MAX_FRAMES, MIN_FRAMES, STEP_MS } from '../../web/js/protocol.gen.js';

test('two steps make a burst within the frame limits', () => {
  const s = plan(['left', 'right']);
  assert.equal(s.frames, (LOOK_MS + 2 * STEP_MS) / FRAME_INTERVAL_MS);
  assert.ok(s.frames >= MIN_FRAMES && s.frames <= MAX_FRAMES, String(s.frames));
  assert.equal(s.total, LOOK_MS + 2 * STEP_MS);
  assert.equal(dueAt(s, s.frames - 1), (s.frames - 1) * FRAME_INTERVAL_MS);
  assert.ok(dueAt(s, s.frames - 1) < s.total, 'the last frame is taken before the script ends');
});

test('the person looks at the camera first, then turns in the commanded order', () => {
  const s = plan(['right', 'left']);
  assert.deepEqual(s.phases.map(p => p.step), [null, 'right', 'left']);
  assert.equal(phaseAt(s, 0).text, 'Look at the camera');
  assert.equal(phaseAt(s, LOOK_MS - 1).step, null);
  assert.equal(phaseAt(s, LOOK_MS).text, 'Turn your head to your right');
  assert.equal(phaseAt(s, LOOK_MS + STEP_MS).step, 'left');
  assert.equal(phaseAt(s, 10 * s.total).step, 'left', 'the last phase stays once time is up');
});

test('arrows point the way the mirrored preview shows the turn', () => {
  const s = plan(['left', 'right']);
  assert.deepEqual(s.phases.map(p => p.arrow), ['', '←', '→']);
});

test('steps it cannot guide are refused, never shown', () => {
  assert.throws(() => plan([]), /no steps/);
  assert.throws(() => plan(['up']), /unknown step up/);
  assert.throws(() => plan(['__proto__']), /unknown step/);
  assert.throws(() => plan('left'), /no steps/);
  assert.throws(() => plan(['left', 'right', 'left']), /3 steps need/);
});
