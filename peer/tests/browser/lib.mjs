// Shared by the browser scenarios: Debian's chromium through playwright-core, one context per
// device, the page's flows as functions, and a screenshot of every screen.
// Environment: ANONCHAT_URL (the rendezvous, which serves the page), CAMERA (a .y4m file),
// SCREENSHOTS (a folder), SECURE_ORIGINS (origins to treat as secure, comma-separated),
// HOST_RULES (Chromium's --host-resolver-rules: a test's host names to loopback). Chromium
// trusts the CAs of the NSS database under $HOME/.pki/nssdb, as on a desktop.

import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';

export const url = process.env.ANONCHAT_URL;
const screenshots = process.env.SCREENSHOTS;
const TIMEOUT = 20000;

/** One line of JSON on stdout: what the Rust side of the test reads. */
export function report(fields) {
  process.stdout.write(JSON.stringify(fields) + '\n');
}

export async function launch() {
  const profile = mkdtempSync(joinPath(tmpdir(), 'anonchat-chromium-'));
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 420, height: 860 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-video-capture=${process.env.CAMERA}`,
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
      // The tests run in a network of their own with only loopback: let WebRTC use it, by address.
      '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
      // The network lab serves the page from a plain-http address that is not localhost:
      // let it count as a secure context there (camera and WebCrypto need one).
      ...(process.env.SECURE_ORIGINS ? [`--unsafely-treat-insecure-origin-as-secure=${process.env.SECURE_ORIGINS}`] : []),
      ...(process.env.HOST_RULES ? [`--host-resolver-rules=${process.env.HOST_RULES}`] : []),
    ],
  });
}

/** A device: a fresh browser profile (its own key, token and storage) with the page (or `at`) open. */
export async function device(name, at = url) {
  // Screenshots of an earlier run of this device would pass for this run's.
  if (screenshots) {
    mkdirSync(screenshots, { recursive: true });
    for (const f of readdirSync(screenshots)) if (f.startsWith(`${name}-`)) rmSync(joinPath(screenshots, f), { force: true });
  }
  const context = await launch();
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', e => report({ device: name, page_error: String(e) }));
  await page.goto(at);
  await page.waitForSelector('body[data-screen]');
  // Where the page came from, and whether the browser counts it as a secure context (the
  // camera and WebCrypto need one).
  report({ device: name, ...(await page.evaluate(() => ({ origin: location.origin, secure: isSecureContext }))) });
  return { name, context, page };
}

export async function screen(d, name) {
  await d.page.waitForSelector(`body[data-screen="${name}"]`);
}

/**
 * Checks what every screen owes a person on a phone: nothing wider than the viewport (no
 * sideways scrolling), and a label for every control shown. Throws what is wrong.
 */
export async function checkUsable(d, label) {
  const problems = await d.page.evaluate(() => {
    const found = [];
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > width) {
      found.push(`the page is ${document.documentElement.scrollWidth} px wide in a ${width} px viewport`);
    }
    // Controls on hidden screens have no boxes; visually hidden ones (the file input) do.
    for (const c of document.querySelectorAll('input, textarea, select')) {
      const shown = c.getClientRects().length > 0;
      const named = c.labels.length > 0 || c.getAttribute('aria-label') || c.getAttribute('aria-labelledby');
      if (shown && !named) found.push(`#${c.id || c.name || c.type} has no label`);
    }
    return found;
  });
  if (problems.length) throw new Error(`${d.name} ${label}: ${problems.join('; ')}`);
}

/** Checks the screen (see `checkUsable`) and saves a screenshot of it. */
export async function shot(d, label) {
  await checkUsable(d, label);
  if (!screenshots) return;
  mkdirSync(screenshots, { recursive: true });
  await d.page.screenshot({ path: joinPath(screenshots, `${d.name}-${label}.png`), fullPage: true });
}

/** Consent, camera, verification; resolves when the profile screen shows. */
export async function verifyWithCamera(d) {
  await screen(d, 'consent');
  await shot(d, '1-consent');
  await d.page.click('#consent-ok');
  await screen(d, 'camera');
  if ((await cameraMode(d)) === 'photo') {
    await d.page.waitForFunction(() => document.getElementById('camera').videoWidth > 0);
  }
  await shot(d, '2-camera');
  await d.page.click('#capture');
  await screen(d, 'profile');
  await shot(d, '3-profile');
}

/** The camera screen's mode once the page has asked the verifier: `active` or `photo`. */
export async function cameraMode(d) {
  await d.page.waitForSelector('body[data-verify-mode]');
  return d.page.evaluate(() => document.body.dataset.verifyMode);
}

/**
 * Records every prompt the head-turn guide shows (`window.guideSeen`: `[{guide, arrow, text}]`,
 * each change once).
 */
export async function recordGuide(d) {
  await d.page.evaluate(() => {
    window.guideSeen = [];
    new MutationObserver(() => {
      const guide = document.body.dataset.guide;
      const last = window.guideSeen[window.guideSeen.length - 1];
      if (guide && (!last || last.guide !== guide)) {
        window.guideSeen.push({
          guide,
          arrow: document.getElementById('guide-arrow').textContent,
          text: document.getElementById('guide-text').textContent,
        });
      }
    }).observe(document.body, { attributes: true, attributeFilter: ['data-guide'] });
  });
}

/** Fills the profile and submits it with the keyboard only. */
export async function submitProfile(d, nickname, bio, interests = '') {
  await screen(d, 'profile');
  await d.page.fill('#nickname', nickname);
  await d.page.fill('#bio', bio);
  await d.page.fill('#interests', interests);
  await d.page.focus('#join');
  await d.page.keyboard.press('Enter');
}

/** Submits the profile; resolves on the waiting or chat screen. */
export async function join(d, nickname, bio, interests = '') {
  await submitProfile(d, nickname, bio, interests);
  await d.page.waitForSelector('body[data-screen="waiting"], body[data-screen="chat"]');
}

/** Waits for the peer-to-peer channel; returns the safety code shown. */
export async function connected(d) {
  await screen(d, 'chat');
  await d.page.waitForSelector('body[data-connected="yes"]');
  return (await d.page.textContent('#safety-code')).trim();
}

export async function say(d, text) {
  await d.page.fill('#message', text);
  await d.page.press('#message', 'Enter');
}

export async function waitForText(d, selector, text) {
  await d.page.waitForFunction(
    ([sel, t]) => [...document.querySelectorAll(sel)].some(e => e.textContent.includes(t)),
    [selector, text],
  );
}

/** Runs a scenario; reports `{"done": true}` or the error, and exits accordingly. */
export async function run(scenario) {
  const devices = [];
  try {
    await scenario(devices);
    report({ done: true });
    for (const d of devices) await d.context.close();
    process.exit(0);
  } catch (e) {
    report({ failed: String(e && e.stack || e) });
    for (const d of devices) {
      if (screenshots) await d.page.screenshot({ path: joinPath(screenshots, `${d.name}-failure.png`), fullPage: true }).catch(() => {});
    }
    process.exit(1);
  }
}

/** Waits for the end screen; returns why the chat ended. */
export async function ended(d) {
  await screen(d, 'ended');
  return (await d.page.textContent('#ended-why')).trim();
}
