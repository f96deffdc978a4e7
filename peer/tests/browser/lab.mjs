// One browser in the network lab (peer/tests/nat_browser.rs): verify with the camera, join
// (with "Hide my IP address" when HIDE_IP=1), connect, say SAY, hear HEAR. Reports the path
// the page shows and every frame the page sent to the rendezvous, so that the test can check
// that none carries an address the user hid.
// Environment (beyond lib.mjs's): NAME, HIDE_IP, SAY, HEAR; EXPECT_REFUSAL=1: the join is
// expected to be refused on the profile screen (reported as `refused`), and that is all.

import { connected, device, join, report, run, screen, shot, submitProfile, verifyWithCamera, waitForText, say } from './lib.mjs';

await run(async devices => {
  const d = await device(process.env.NAME);
  devices.push(d);
  // Every frame the page sends on its WebSocket, as it leaves the page.
  await d.page.evaluate(() => {
    const send = WebSocket.prototype.send;
    window.sentFrames = [];
    WebSocket.prototype.send = function (data) {
      window.sentFrames.push(String(data));
      return send.call(this, data);
    };
  });
  await verifyWithCamera(d);
  if (process.env.HIDE_IP === '1') await d.page.check('#hide-ip');
  if (process.env.EXPECT_REFUSAL === '1') {
    await submitProfile(d, process.env.NAME, 'Chatting across the network lab');
    await d.page.waitForFunction(() => document.getElementById('profile-error').textContent.length > 0);
    await screen(d, 'profile');
    await shot(d, '4-refused');
    report({ refused: await d.page.textContent('#profile-error'), hide_ip_kept: await d.page.isChecked('#hide-ip') });
    return;
  }
  await join(d, process.env.NAME, 'Chatting across the network lab');
  const code = await connected(d);
  await d.page.waitForFunction(() => document.getElementById('path').textContent.length > 0);
  await shot(d, '4-chat-connected');
  report({
    connected: true,
    safety_code: code,
    path: await d.page.evaluate(() => document.body.dataset.path),
    shown: await d.page.textContent('#path'),
  });
  await say(d, process.env.SAY);
  await waitForText(d, '#messages li.theirs', process.env.HEAR);
  await d.page.waitForSelector('#messages li.mine[data-delivered="yes"]');
  report({ heard: true, sent: await d.page.evaluate(() => window.sentFrames) });
  // Stay until the other side has heard too (the test ends this process).
  await new Promise(resolve => setTimeout(resolve, 60000));
});
