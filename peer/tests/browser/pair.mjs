// Browser ↔ browser, and every way a chat ends: four devices (four browser profiles), verified
// through the camera. Messages both ways with ticks and typing; report and block; leave; next;
// a reload mid-chat, which ends the chat and never resurrects it.

import { connected, device, ended, join, report, run, say, screen, shot, submitProfile, verifyWithCamera, waitForText } from './lib.mjs';

function expectEqual(what, got, want) {
  if (got !== want) throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

await run(async devices => {
  const [a, b, c, d] = await Promise.all(['pair-a', 'pair-b', 'pair-c', 'pair-d'].map(name => device(name)));
  devices.push(a, b, c, d);
  for (const x of devices) await verifyWithCamera(x);

  // A and B chat.
  await join(a, 'alice', 'First in the queue today');
  await screen(a, 'waiting');
  await a.page.waitForFunction(() => document.getElementById('waiting-count').textContent.includes('waiting'));
  await shot(a, '4-waiting');
  await join(b, 'bruno', 'Second in the queue today');
  const [codeA, codeB] = await Promise.all([connected(a), connected(b)]);
  expectEqual('safety codes', codeA, codeB);
  expectEqual('A sees', (await a.page.textContent('#partner-name')).trim(), 'bruno');
  await say(a, 'hello bruno');
  await waitForText(b, '#messages li.theirs', 'hello bruno');
  await a.page.waitForSelector('#messages li.mine[data-delivered="yes"]');
  await b.page.type('#message', 'hi alice', { delay: 5 });
  await waitForText(a, '#typing', 'bruno is typing');
  await b.page.press('#message', 'Enter');
  await waitForText(a, '#messages li.theirs', 'hi alice');
  await a.page.waitForFunction(() => document.getElementById('typing').textContent === '');
  // A message with an e-mail address is held back once, sent when insisted on, flagged there.
  await say(a, 'mail me: alice@example.org');
  await waitForText(a, '#send-error', 'e-mail address');
  await a.page.press('#message', 'Enter');
  await b.page.waitForSelector('#messages li.theirs.flagged');
  await shot(a, '5-chat');
  await shot(b, '5-chat');
  report({ browser_to_browser: codeA });

  // A reports, then blocks: B is told the partner left.
  await a.page.click('#report');
  await waitForText(a, '#messages li.system', 'report was received');
  await a.page.click('#block');
  expectEqual('A after block', await ended(a), 'You blocked this person.');
  await waitForText(a, '#ended-note', 'will not be matched');
  await shot(a, '6-blocked');
  expectEqual('B after block', await ended(b), 'Your partner left.');
  report({ reported_and_blocked: true });

  // C meets A; A leaves.
  await join(c, 'carla', 'Third in the queue today');
  await a.page.click('#again');
  await Promise.all([connected(a), connected(c)]);
  expectEqual('A meets', (await a.page.textContent('#partner-name')).trim(), 'carla');
  await a.page.click('#leave');
  expectEqual('A after leave', await ended(a), 'You left the chat.');
  expectEqual('C after leave', await ended(c), 'Your partner left.');
  report({ left: true });

  // C meets B; C moves on with Next, and is back in the queue.
  await c.page.click('#again');
  await screen(c, 'waiting');
  await b.page.click('#again');
  await Promise.all([connected(b), connected(c)]);
  await c.page.click('#next');
  await screen(c, 'waiting');
  expectEqual('B after next', await ended(b), 'Your partner left.');
  report({ next: true });

  // D's profile is checked as D types, and the server's refusal is shown at its field.
  await d.page.type('#nickname', 'dx');
  await waitForText(d, '#nickname-error', '3 to 24 characters (2 now)');
  // (The waiting screen may show only for a moment before the refusal: wait for the refusal.)
  await submitProfile(d, 'dario', 'what the fuck is this queue');
  await d.page.waitForFunction(() => document.getElementById('bio-error').textContent.length > 0);
  await screen(d, 'profile');
  await shot(d, '4-profile-refused');
  report({ field_error: (await d.page.textContent('#bio-error')).trim() });

  // D meets C, then reloads mid-chat: the chat ends for both and is not resurrected.
  await join(d, 'dario', 'Fourth in the queue today');
  await Promise.all([connected(c), connected(d)]);
  const match = await d.page.evaluate(() => sessionStorage.getItem('anonchat.match'));
  if (!match) throw new Error('the current match is not in sessionStorage');
  await d.page.reload();
  await screen(d, 'profile');
  await waitForText(d, '#status', 'ended when the page was reloaded');
  expectEqual('match after reload', await d.page.evaluate(() => sessionStorage.getItem('anonchat.match')), null);
  await shot(d, '7-after-reload');
  expectEqual('C after reload', await ended(c), 'Your partner left.');
  report({ reload: true });
});
