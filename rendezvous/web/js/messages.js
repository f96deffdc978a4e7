// What each error code of the verifier and the rendezvous means to a person.

const TEXT = {
  // verifier
  no_face: 'No face was found. Face the camera in good light and try again.',
  multiple_faces: 'More than one face is in the picture. Make sure you are alone in it.',
  face_too_small: 'Your face is too small in the picture. Come closer to the camera.',
  spoof_detected: 'This looks like a photo of a photo or a screen, not a live selfie. Please use your camera.',
  low_confidence: 'The picture is not clear enough. Try again in better light.',
  unsupported_image: 'This kind of image is not supported. Use a JPEG, PNG or WebP photo.',
  corrupt_image: 'The image could not be read. Try another one.',
  image_too_large: 'The image is too large. Try a smaller photo.',
  bad_request: 'The verification request was not understood. Reload the page and try again.',
  rate_limited: 'Too many tries. Wait a minute and try again.',
  overloaded: 'The verifier is busy. Try again in a moment.',
  internal: 'Something went wrong on the server. Try again in a moment.',
  // rendezvous
  bad_message: 'The server did not understand a message. Reload the page.',
  invalid_token: 'Your verification is not valid any more. Verify again.',
  token_expired: 'Your verification has expired. Verify again.',
  bad_signature: 'This browser could not prove it holds its key. Verify again.',
  banned: 'You have been reported by several people and cannot chat for a while.',
  timeout: 'The connection timed out. Try again.',
  not_authenticated: 'Not logged in. Reload the page.',
  invalid_profile: 'Please check your profile.',
  daily_limit: 'You have met as many people as allowed today. Come back tomorrow.',
  already_queued: 'You are already waiting for a match.',
  not_in_match: 'That chat is already over.',
  not_signaling: 'A connection message was refused.',
  invalid_receipt: 'That chat can no longer be reported or blocked.',
  shutting_down: 'The server is restarting. Try again in a moment.',
  replaced: 'You connected again from another window or device, so this one was disconnected.',
  // this page
  unreachable: 'The server cannot be reached. Check your connection and try again.',
  camera: 'The camera is not available. Allow it, or choose a photo instead.',
  connect_failed: 'Could not connect to your partner, directly or through a relay. Try someone else.',
  no_relay: 'This server offers no relay, so your IP address cannot be hidden. Untick "Hide my IP address" to chat.',
  contact_details: 'This looks like an e-mail address or phone number, which strangers can misuse. Send it again to send it anyway.',
  bad_image: 'Images must be JPEG, PNG or WebP, at most 1 MiB and 2048 × 2048 pixels.',
};

export function explain(code, fallback) {
  return TEXT[code] || fallback || `Something went wrong (${code}).`;
}
