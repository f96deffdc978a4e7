// The camera path: a live face is verified and gets a token; then (a second device) a photo of a
// photo is refused with the page's message for `spoof_detected`.
// The camera file is CAMERA for the first device and SPOOF_CAMERA for the second.

import { device, report, run, screen, shot, verifyWithCamera } from './lib.mjs';

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
