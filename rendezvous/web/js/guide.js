// The head-turn challenge's script, with no DOM: what the person is asked to do at each moment
// of the burst, and when frames are taken. The pacing comes from the protocol (the verifier's
// frame limits were made for it); verify.js runs the script against the camera.

import { FRAME_INTERVAL_MS, LOOK_MS, MAX_FRAMES, STEP_MS } from './protocol.gen.js';

// The preview is mirrored, as a mirror is: the person's own left is on the screen's left.
const ARROWS = Object.freeze({ left: '←', right: '→' });

/**
 * The script for `steps` (the verifier's, e.g. `["left", "right"]`): phases `{step, text,
 * arrow, from, to}` in ms since the first frame, the frame count and the total time. Throws on
 * a step it does not know or more steps than a burst has frames for.
 */
export function plan(steps) {
  if (!Array.isArray(steps) || steps.length === 0) throw new Error('no steps');
  const phases = [{ step: null, text: 'Look at the camera', arrow: '', from: 0, to: LOOK_MS }];
  let t = LOOK_MS;
  for (const step of steps) {
    if (!Object.hasOwn(ARROWS, step)) throw new Error(`unknown step ${String(step).slice(0, 20)}`);
    phases.push({ step, text: `Turn your head to your ${step}`, arrow: ARROWS[step], from: t, to: t + STEP_MS });
    t += STEP_MS;
  }
  const frames = Math.floor(t / FRAME_INTERVAL_MS);
  if (frames > MAX_FRAMES) throw new Error(`${steps.length} steps need ${frames} frames`);
  return { phases, frames, total: t, interval: FRAME_INTERVAL_MS };
}

/** The phase shown `ms` after the first frame (the last one once time is up). */
export function phaseAt(script, ms) {
  return script.phases.find(p => ms < p.to) || script.phases[script.phases.length - 1];
}

/** When frame `i` is due, in ms after the first. */
export function dueAt(script, i) {
  return i * script.interval;
}
