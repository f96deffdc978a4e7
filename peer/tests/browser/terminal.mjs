// Browser ↔ `anonchat chat --json` (driven by the Rust side of the test): text both ways with
// delivery ticks, typing, an image each way, the same safety code, and the terminal leaving.
// IMAGE: a PNG to send; DEVICE: the device's name in the screenshots (tests running side by side
// keep theirs apart).

import { connected, device, join, report, run, screen, shot, verifyWithCamera, waitForText } from './lib.mjs';

await run(async devices => {
  const d = await device(process.env.DEVICE || 'terminal-partner');
  devices.push(d);
  await verifyWithCamera(d);
  await join(d, 'webcam', 'Chatting from a browser tab', 'jazz, film');
  const code = await connected(d);
  await shot(d, '4-chat-connected');
  report({ safety_code: code, partner: await d.page.textContent('#partner-name') });

  await waitForText(d, '#messages li.theirs', 'hello from the terminal');
  await d.page.type('#message', 'hi terminal', { delay: 5 });
  await d.page.press('#message', 'Enter');
  await d.page.waitForSelector('#messages li.mine[data-delivered="yes"]');
  report({ delivered: true });

  await waitForText(d, '#typing', 'is typing');
  report({ saw_typing: true });
  await d.page.waitForSelector('#messages li.theirs img');
  const width = await d.page.$eval('#messages li.theirs img', img => img.decode().then(() => img.naturalWidth));
  report({ image_width: width });

  await d.page.setInputFiles('#image-file', process.env.IMAGE);
  await d.page.waitForSelector('#messages li.mine img');
  await d.page.waitForFunction(() => [...document.querySelectorAll('#messages li.mine')].some(li => li.querySelector('img') && li.dataset.delivered === 'yes'));
  await shot(d, '5-chat-images');
  report({ image_delivered: true });

  await screen(d, 'ended');
  await shot(d, '6-ended');
  report({ ended: (await d.page.textContent('#ended-why')).trim() });
});
