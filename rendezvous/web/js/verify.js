// The selfie: taken from the camera (a frame drawn to a canvas, encoded as JPEG) or picked from
// a file, sent once to the verifier with this device's public key, and dropped.

export async function startCamera(video) {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' },
    audio: false,
  });
  video.srcObject = stream;
  await video.play();
  return stream;
}

export function stopCamera(video) {
  const stream = video.srcObject;
  if (stream) for (const track of stream.getTracks()) track.stop();
  video.srcObject = null;
}

/** The current frame as a JPEG. */
export function captureJpeg(video) {
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  return new Promise((resolve, reject) =>
    canvas.toBlob(b => (b ? resolve(b) : reject(new Error('no frame'))), 'image/jpeg', 0.92));
}

/**
 * Asks the verifier; resolves to `{verified: true, token, gender, expires_at, peer_id}` or
 * `{verified: false, error: {code, message}}`.
 */
export async function verify(verifierUrl, photo, publicKey, undisclosed) {
  const form = new FormData();
  form.append('image', photo, 'selfie.jpg');
  form.append('public_key', publicKey);
  if (undisclosed) form.append('gender', 'undisclosed');
  let response;
  try {
    response = await fetch(`${verifierUrl}/v1/verify`, { method: 'POST', body: form });
  } catch {
    return { verified: false, error: { code: 'unreachable' } };
  }
  try {
    return await response.json();
  } catch {
    return { verified: false, error: { code: 'internal' } };
  }
}
