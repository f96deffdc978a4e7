// What each error code of the verifier and the rendezvous means to a person: the servers'
// sentences come with the protocol (protocol.gen.js), this page adds its own.

import { VERIFIER_ERRORS, RENDEZVOUS_ERRORS, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS } from './protocol.gen.js';

const side = Math.sqrt(MAX_IMAGE_PIXELS);

const TEXT = {
  ...VERIFIER_ERRORS,
  ...RENDEZVOUS_ERRORS,
  // this page
  unreachable: 'The server cannot be reached. Check your connection and try again.',
  camera: 'The camera is not available. Allow the page to use it and try again.',
  connect_failed: 'Could not connect to your partner, directly or through a relay. Try someone else.',
  no_relay: 'This server offers no relay, so your IP address cannot be hidden. Untick "Hide my IP address" to chat.',
  contact_details: 'This looks like an e-mail address or phone number, which strangers can misuse. Send it again to send it anyway.',
  bad_image: `Images must be JPEG, PNG or WebP, at most ${MAX_IMAGE_BYTES / (1024 * 1024)} MiB and ${side} × ${side} pixels.`,
};

export function explain(code, fallback) {
  return TEXT[code] || fallback || `Something went wrong (${code}).`;
}
