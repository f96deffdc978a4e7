// The camera path: a live face is verified and gets a token; then (a second device) a photo of a
// photo is refused with the page's message for `spoof_detected`.
// The camera file is CAMERA for the first device and SPOOF_CAMERA for the second.

import { device, report, run, screen, shot, submitProfile, verifyWithCamera } from './lib.mjs';

await run(async devices => {
  const real = await device('verify-real');
  devices.push(real);
  await verifyWithCamera(real);
  const token = await real.page.evaluate(() => JSON.parse(localStorage.getItem('anonchat.token')));
  const peer = await real.page.evaluate(() => document.body.dataset.peer);
  report({ token: token.token, gender: token.gender, peer_id: peer, token_peer_id: token.peer_id });
  // Nothing of the selfie stays in the browser: only the token and the key are kept.
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

  process.env.CAMERA = process.env.SPOOF_CAMERA;
  const spoof = await device('verify-spoof');
  devices.push(spoof);
  await screen(spoof, 'consent');
  await spoof.page.click('#consent-ok');
  await spoof.page.waitForFunction(() => document.getElementById('camera').videoWidth > 0);
  await spoof.page.click('#capture');
  await spoof.page.waitForSelector('body[data-verify-error]');
  await shot(spoof, 'refused');
  report({
    refused: await spoof.page.evaluate(() => document.body.dataset.verifyError),
    message: (await spoof.page.textContent('#verify-error')).trim(),
    screen: await spoof.page.evaluate(() => document.body.dataset.screen),
  });
});
