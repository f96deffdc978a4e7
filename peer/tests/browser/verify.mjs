// The camera path in active mode: a live head turn, guided step by step, is verified and gets a
// token; the same turns in the wrong order, and a still picture held to the camera, are refused
// with the page's message and a way to try again.
// Cameras: CAMERA (the turns in the challenge's order), WRONG_CAMERA (the other order),
// STILL_CAMERA (one still photo).

import { cameraMode, device, recordGuide, report, run, screen, shot, submitProfile } from './lib.mjs';

/** Consent, then the camera screen in active mode: what it offers before the check. */
async function cameraScreen(d) {
  await screen(d, 'consent');
  await d.page.click('#consent-ok');
  await screen(d, 'camera');
  return {
    mode: await cameraMode(d),
    photo_choice_shown: await d.page.isVisible('#photo-file'),
    button: (await d.page.textContent('#capture')).trim(),
  };
}

/** A check that the verifier refuses: what the page says then. */
async function refusedCheck(name, camera) {
  process.env.CAMERA = camera;
  const d = await device(name);
  await cameraScreen(d);
  await d.page.click('#capture');
  await d.page.waitForSelector('body[data-verify-error]');
  await d.page.waitForFunction(() => !document.getElementById('capture').disabled);
  await shot(d, 'refused');
  const seen = {
    refused: await d.page.evaluate(() => document.body.dataset.verifyError),
    message: (await d.page.textContent('#verify-error')).trim(),
    screen: await d.page.evaluate(() => document.body.dataset.screen),
    button: (await d.page.textContent('#capture')).trim(),
    camera_live: await d.page.evaluate(() => !!document.getElementById('camera').srcObject),
  };
  return { d, seen };
}

await run(async devices => {
  const real = await device('verify-real');
  devices.push(real);
  report({ camera_screen: await cameraScreen(real) });
  await shot(real, '2-camera');
  await recordGuide(real);
  await real.page.click('#capture');
  await real.page.waitForSelector('body[data-guide]');
  await shot(real, '2-guide');
  await screen(real, 'profile');
  report({ guide: await real.page.evaluate(() => window.guideSeen) });
  const token = await real.page.evaluate(() => JSON.parse(localStorage.getItem('anonchat.token')));
  const peer = await real.page.evaluate(() => document.body.dataset.peer);
  report({ token: token.token, gender: token.gender, peer_id: peer, token_peer_id: token.peer_id });
  // Nothing of the frames stays in the browser: only the token and the key are kept.
  report({
    storage: await real.page.evaluate(async () => ({
      local: Object.keys(localStorage),
      session: Object.keys(sessionStorage),
      local_bytes: Object.values(localStorage).join('').length,
      databases: (await indexedDB.databases()).map(d => d.name),
      camera_live: !!document.getElementById('camera').srcObject,
    })),
  });

  // The key survives a reload (IndexedDB), and so does the token: straight to the profile.
  await real.page.reload();
  await screen(real, 'profile');
  const again = await real.page.evaluate(() => document.body.dataset.peer);
  report({ peer_after_reload: again });

  // A token about to lapse is not used: the page asks for a new verification.
  const setToken = t => real.page.evaluate(t => localStorage.setItem('anonchat.token', JSON.stringify(t)), t);
  await setToken({ ...token, expires_at: Math.floor(Date.now() / 1000) + 30 });
  await real.page.reload();
  await screen(real, 'consent');
  report({ lapsed_token_screen: 'consent' });

  // A token the rendezvous refuses (here its signature is broken) is forgotten at join, and the
  // page says why and starts over.
  const [head, claims, signature] = token.token.split('.');
  const broken = `${head}.${claims}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
  await setToken({ ...token, token: broken });
  await real.page.reload();
  await screen(real, 'profile');
  await submitProfile(real, 'verifier', 'Checking what a refused token does');
  await screen(real, 'consent');
  await real.page.waitForFunction(() => document.getElementById('status').textContent.length > 0);
  await shot(real, 'token-refused');
  report({
    refused_token: {
      status: (await real.page.textContent('#status')).trim(),
      stored: await real.page.evaluate(() => localStorage.getItem('anonchat.token')),
    },
  });

  // A received image is checked before it is drawn: one claiming more pixels than the limit is
  // refused from its header; one within it passes.
  report({
    image_checks: await real.page.evaluate(async () => {
      const { checkImage } = await import('./js/chat.js');
      const png = async side => {
        const canvas = new OffscreenCanvas(side, side);
        canvas.getContext('2d').fillRect(0, 0, 1, 1);
        return new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
      };
      const outcome = bytes => checkImage(bytes).catch(e => e.message);
      const bomb = await png(3000);
      return { bomb: await outcome(bomb), bomb_bytes: bomb.length, small: await outcome(await png(64)) };
    }),
  });

  const wrong = await refusedCheck('verify-wrong-order', process.env.WRONG_CAMERA);
  devices.push(wrong.d);
  report({ wrong_order: wrong.seen });
  const still = await refusedCheck('verify-still', process.env.STILL_CAMERA);
  devices.push(still.d);
  report({ still: still.seen });
});
