// A phone verifies for a terminal: the page opened at the terminal's pairing address (PAIR_URL)
// shows the terminal key's fingerprint, runs the head-turn check with the camera (CAMERA), and
// ends on the paired screen with no token of its own; the same address opened again is refused.

import { device, recordGuide, report, run, screen, shot } from './lib.mjs';

await run(async devices => {
  const phone = await device('pair-phone', process.env.PAIR_URL);
  devices.push(phone);
  await screen(phone, 'consent');
  await phone.page.waitForSelector('body[data-pairing="ready"]');
  await shot(phone, '1-consent');
  report({ fingerprint: (await phone.page.textContent('#pair-fingerprint')).trim() });
  await phone.page.click('#consent-ok');
  await screen(phone, 'camera');
  await recordGuide(phone);
  await phone.page.click('#capture');
  await screen(phone, 'paired');
  await shot(phone, '2-paired');
  report({
    paired: {
      guide: await phone.page.evaluate(() => window.guideSeen.map(g => g.guide)),
      local: await phone.page.evaluate(() => Object.keys(localStorage)),
      camera_live: await phone.page.evaluate(() => !!document.getElementById('camera').srcObject),
    },
  });

  // The code was used: opened again, the page says so and offers nothing to do.
  const again = await device('pair-again', process.env.PAIR_URL);
  devices.push(again);
  await again.page.waitForSelector('body[data-pair-error]');
  await shot(again, 'used');
  report({
    used: {
      code: await again.page.evaluate(() => document.body.dataset.pairError),
      status: (await again.page.textContent('#status')).trim(),
      can_continue: !(await again.page.isDisabled('#consent-ok')),
    },
  });
});
