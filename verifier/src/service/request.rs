//! Reading a `POST /v1/verify` body — multipart or JSON — into an image, a device key and a
//! gender mode. Every copy of the image this module makes is zeroized when dropped.

use std::time::Duration;

use std::sync::Arc;

use anonchat_protocol::token::public_key_from_base64url;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use futures_util::stream;
use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::{Zeroize, Zeroizing};

use anonchat_protocol::verify::{MAX_FRAMES, MIN_FRAMES};

use crate::error::VerifyError;
use crate::pipeline::GenderMode;

/// A parsed verification request.
pub struct VerifyRequest {
    pub evidence: Evidence,
    pub public_key: VerifyingKey,
    pub mode: GenderMode,
    /// A terminal's pairing code: the token is kept for that terminal instead of answered.
    pub pair_code: Option<String>,
}

/// What the request offers as proof of a live person.
pub enum Evidence {
    /// One still image (photo mode).
    Photo(Zeroizing<Vec<u8>>),
    /// The frames of a head-turn challenge, in capture order, and when each was captured (ms
    /// since the first) if the client said.
    Burst {
        challenge_id: String,
        frames: Vec<Zeroizing<Vec<u8>>>,
        frame_ms: Option<Vec<u64>>,
    },
}

/// How long a client may take to send its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes owned for [`Bytes::from_owner`], wiped when the last reference goes.
struct Wiped(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for Wiped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The bytes all unfinished requests may hold together. A request takes its share as its
/// buffer grows and gives it back when it ends, so stalled uploads cannot add up to more than
/// this, however many there are; past it, new bytes are refused with 503 `overloaded`.
#[derive(Clone)]
pub struct BodyBudget(Arc<Semaphore>);

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        BodyBudget(Arc::new(Semaphore::new(
            bytes.clamp(1, Semaphore::MAX_PERMITS),
        )))
    }

    /// Bytes not taken by any request right now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }

    fn take(
        &self,
        bytes: usize,
        held: &mut Option<OwnedSemaphorePermit>,
    ) -> Result<(), VerifyError> {
        let Ok(n) = u32::try_from(bytes) else {
            return Err(VerifyError::Overloaded);
        };
        let more = self
            .0
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| VerifyError::Overloaded)?;
        match held {
            Some(permit) => permit.merge(more),
            None => *held = Some(more),
        }
        Ok(())
    }
}

/// A request body and its share of the [`BodyBudget`].
pub struct Body {
    pub bytes: Zeroizing<Vec<u8>>,
    pub share: Share,
}

/// Bytes taken from a [`BodyBudget`], given back when this is dropped.
pub struct Share(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

/// Reads the whole body, refusing more than `limit` bytes as soon as it is exceeded, and more
/// than `budget` has left. With a `content_length` the buffer is taken whole at once (no copy
/// as it grows); without, it doubles, paying for the new buffer before the old one is freed.
/// Each network buffer is wiped after it is copied, when this is its only owner.
pub async fn read_body(
    body: axum::body::Body,
    content_length: Option<u64>,
    limit: usize,
    budget: &BodyBudget,
) -> Result<Body, VerifyError> {
    let mut body = body;
    let mut out = Zeroizing::new(Vec::new());
    let mut share = None;
    let too_large =
        || VerifyError::ImageTooLarge(format!("the request body is over {limit} bytes"));
    if let Some(length) = content_length {
        let Some(length) = usize::try_from(length).ok().filter(|n| *n <= limit) else {
            // Read and drop what was announced (nothing is kept), so that the client hears the
            // refusal instead of a connection reset in the middle of its upload.
            let drain = async {
                let mut drained = 0usize;
                while let Some(Ok(frame)) = body.frame().await {
                    if let Ok(data) = frame.into_data() {
                        drained += data.len();
                        wipe_bytes(data);
                    }
                    if drained > limit.saturating_mul(4) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(BODY_TIMEOUT, drain).await;
            return Err(too_large());
        };
        budget.take(length, &mut share)?;
        out.reserve_exact(length);
    }
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| {
                VerifyError::BadRequest("the request body could not be read".into())
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if out.len() + data.len() > limit {
                wipe_bytes(data);
                return Err(too_large());
            }
            let needed = out.len() + data.len();
            if needed > out.capacity() {
                // Grow by doubling, as Vec would: the new buffer is paid for before it is
                // taken, the old one given back once the copy is done.
                let old = out.capacity();
                let capacity = needed.max(old * 2).min(limit);
                budget.take(capacity, &mut share)?;
                let more = capacity - out.len();
                out.reserve_exact(more);
                if let Some(freed) = share.as_mut().and_then(|s| s.split(old)) {
                    drop(freed);
                }
            }
            out.extend_from_slice(&data);
            wipe_bytes(data);
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(result) => result.map(|()| Body {
            bytes: out,
            share: Share(share),
        }),
        Err(_) => Err(VerifyError::BadRequest(
            "the request body took too long to arrive".into(),
        )),
    }
}

fn wipe_bytes(data: Bytes) {
    if let Ok(mut owned) = data.try_into_mut() {
        owned.zeroize();
    }
}

/// Parses the body by its content type.
pub async fn parse(
    content_type: Option<&str>,
    body: Zeroizing<Vec<u8>>,
    max_image: usize,
    max_frame: usize,
) -> Result<VerifyRequest, VerifyError> {
    let content_type = content_type.unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "multipart/form-data" => parse_multipart(content_type, body, max_image, max_frame).await,
        "application/json" => parse_json(&body, max_image, max_frame),
        _ => Err(VerifyError::BadRequest(
            "send multipart/form-data (image, public_key, gender) or application/json".into(),
        )),
    }
}

async fn parse_multipart(
    content_type: &str,
    body: Zeroizing<Vec<u8>>,
    max_image: usize,
    max_frame: usize,
) -> Result<VerifyRequest, VerifyError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| VerifyError::BadRequest("multipart body without a boundary".into()))?;
    let body = Bytes::from_owner(Wiped(body));
    let stream = stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let bad = |what: &str| VerifyError::BadRequest(format!("malformed multipart body: {what}"));

    let mut fields = Fields::default();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|_| bad("unreadable part"))?
    {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "image" | "frame" => {
                let (limit, what) = if name == "image" {
                    (max_image, "the image")
                } else {
                    (max_frame, "a frame")
                };
                if name == "frame" && fields.frames.len() >= MAX_FRAMES {
                    return Err(VerifyError::BadRequest(format!(
                        "more than {MAX_FRAMES} frames"
                    )));
                }
                let mut data = Zeroizing::new(Vec::new());
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|_| bad("truncated image part"))?
                {
                    if data.len() + chunk.len() > limit {
                        return Err(VerifyError::ImageTooLarge(format!(
                            "{what} is over {limit} bytes"
                        )));
                    }
                    data.extend_from_slice(&chunk);
                    wipe_bytes(chunk);
                }
                if name == "image" {
                    fields.image = Some(data);
                } else {
                    fields.frames.push(data);
                }
            }
            "public_key" | "gender" | "challenge_id" | "frame_ms" | "pair_code" => {
                if name == "frame_ms" && fields.frame_ms.len() >= MAX_FRAMES {
                    return Err(VerifyError::BadRequest(format!(
                        "more than {MAX_FRAMES} frame times"
                    )));
                }
                let text = field
                    .text()
                    .await
                    .map_err(|_| bad("unreadable text part"))?;
                if text.len() > 256 {
                    return Err(VerifyError::BadRequest(format!("field {name} is too long")));
                }
                match name.as_str() {
                    "public_key" => fields.public_key = Some(text),
                    "gender" => fields.gender = Some(text),
                    "challenge_id" => fields.challenge_id = Some(text),
                    "pair_code" => fields.pair_code = Some(text),
                    _ => fields.frame_ms.push(text.trim().parse().map_err(|_| {
                        VerifyError::BadRequest("frame_ms must be whole milliseconds".into())
                    })?),
                }
            }
            other => {
                return Err(VerifyError::BadRequest(format!(
                    "unexpected field {:?}; the fields are image (or challenge_id, frame and \
                     frame_ms), public_key, gender and pair_code",
                    other.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    fields.finish()
}

/// A request's fields as they arrive, before they are checked together.
#[derive(Default)]
struct Fields {
    image: Option<Zeroizing<Vec<u8>>>,
    public_key: Option<String>,
    gender: Option<String>,
    challenge_id: Option<String>,
    frames: Vec<Zeroizing<Vec<u8>>>,
    frame_ms: Vec<u64>,
    pair_code: Option<String>,
}

impl Fields {
    fn finish(self) -> Result<VerifyRequest, VerifyError> {
        let bad = |m: String| Err(VerifyError::BadRequest(m));
        let evidence = match (self.challenge_id, self.image) {
            (Some(_), Some(_)) => return bad("send frames or an image, not both".into()),
            (None, Some(image)) if self.frames.is_empty() => Evidence::Photo(image),
            (None, _) if !self.frames.is_empty() => {
                return bad("frames need their challenge_id".into());
            }
            (None, _) => return bad("missing field image".into()),
            (Some(id), None) => {
                if !(MIN_FRAMES..=MAX_FRAMES).contains(&self.frames.len()) {
                    return bad(format!(
                        "{} frames; a challenge takes {MIN_FRAMES} to {MAX_FRAMES}",
                        self.frames.len()
                    ));
                }
                let frame_ms = match self.frame_ms.len() {
                    0 => None,
                    n if n == self.frames.len() => Some(self.frame_ms),
                    n => {
                        return bad(format!("{n} frame times for {} frames", self.frames.len()));
                    }
                };
                Evidence::Burst {
                    challenge_id: id.trim().to_owned(),
                    frames: self.frames,
                    frame_ms,
                }
            }
        };
        let mut request = finish(evidence, self.public_key.as_deref(), self.gender.as_deref())?;
        request.pair_code = self.pair_code.map(|c| c.trim().to_owned());
        Ok(request)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonBody {
    image: Option<Zeroizing<String>>,
    public_key: Option<String>,
    gender: Option<String>,
    challenge_id: Option<String>,
    /// A burst's frames, each as [`JsonBody::image`] is.
    #[serde(default)]
    frames: Vec<Zeroizing<String>>,
    #[serde(default)]
    frame_ms: Vec<u64>,
    pair_code: Option<String>,
}

fn parse_json(
    body: &[u8],
    max_image: usize,
    max_frame: usize,
) -> Result<VerifyRequest, VerifyError> {
    let parsed: JsonBody = serde_json::from_slice(body).map_err(|e| {
        // serde's message names the field or the position, never the value.
        VerifyError::BadRequest(format!(
            "invalid JSON body: {}",
            e.to_string().chars().take(200).collect::<String>()
        ))
    })?;
    if parsed.frames.len() > MAX_FRAMES || parsed.frame_ms.len() > MAX_FRAMES {
        return Err(VerifyError::BadRequest(format!(
            "more than {MAX_FRAMES} frames"
        )));
    }
    let fields = Fields {
        image: match parsed.image.as_deref() {
            Some(text) => Some(decode_image_text(text, max_image)?),
            None => None,
        },
        public_key: parsed.public_key,
        gender: parsed.gender,
        challenge_id: parsed.challenge_id,
        frames: parsed
            .frames
            .iter()
            .map(|f| decode_image_text(f, max_frame))
            .collect::<Result<_, _>>()?,
        frame_ms: parsed.frame_ms,
        pair_code: parsed.pair_code,
    };
    fields.finish()
}

/// Decodes a base64 image, plain or as a `data:` URL, in any base64 alphabet, padded or not.
fn decode_image_text(text: &str, max_image: usize) -> Result<Zeroizing<Vec<u8>>, VerifyError> {
    let payload = match text.strip_prefix("data:") {
        Some(rest) => {
            let (meta, data) = rest
                .split_once(',')
                .ok_or_else(|| VerifyError::BadRequest("malformed data URL".into()))?;
            if !meta.ends_with(";base64") {
                return Err(VerifyError::BadRequest(
                    "the data URL must be base64".into(),
                ));
            }
            data
        }
        None => text,
    };
    let payload = payload.trim();
    if payload.len() / 4 * 3 > max_image + 3 {
        return Err(VerifyError::ImageTooLarge(format!(
            "the image is over {max_image} bytes"
        )));
    }
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        let mut out = Zeroizing::new(Vec::new());
        if engine.decode_vec(payload, &mut out).is_ok() {
            return Ok(out);
        }
    }
    Err(VerifyError::BadRequest("image is not valid base64".into()))
}

fn finish(
    evidence: Evidence,
    public_key: Option<&str>,
    gender: Option<&str>,
) -> Result<VerifyRequest, VerifyError> {
    let key =
        public_key.ok_or_else(|| VerifyError::BadRequest("missing field public_key".into()))?;
    let public_key = public_key_from_base64url(key.trim())
        .map_err(|e| VerifyError::BadRequest(format!("public_key: {e}")))?;
    let mode = match gender.map(str::trim) {
        None | Some("") | Some("infer") => GenderMode::Infer,
        Some("undisclosed") => GenderMode::Undisclosed,
        Some(_) => {
            return Err(VerifyError::BadRequest(
                "gender must be \"undisclosed\" or absent".into(),
            ));
        }
    };
    Ok(VerifyRequest {
        evidence,
        public_key,
        mode,
        pair_code: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(chunks: usize, size: usize) -> axum::body::Body {
        let parts = (0..chunks).map(move |_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; size])));
        axum::body::Body::from_stream(stream::iter(parts))
    }

    #[tokio::test]
    async fn a_body_pays_for_its_buffer_and_gives_it_back_when_dropped() {
        let budget = BodyBudget::new(1 << 20);
        let body = read_body(chunked(10, 1000), None, 1 << 20, &budget)
            .await
            .unwrap();
        assert_eq!(body.bytes.len(), 10_000);
        // Held while the request lasts: the buffer's capacity, not more.
        let held = (1 << 20) - budget.available();
        assert!((10_000..=20_000).contains(&held), "{held}");
        drop(body);
        assert_eq!(budget.available(), 1 << 20);

        // Declared lengths are paid for at once.
        let body = read_body(chunked(1, 3000), Some(3000), 1 << 20, &budget)
            .await
            .unwrap();
        assert_eq!((1 << 20) - budget.available(), 3000);
        drop(body);
    }

    #[tokio::test]
    async fn past_the_budget_a_body_is_refused_as_overloaded_and_its_share_returned() {
        let budget = BodyBudget::new(64 * 1024);
        let got = read_body(chunked(100, 1024), None, 1 << 20, &budget).await;
        assert!(
            matches!(got, Err(VerifyError::Overloaded)),
            "{:?}",
            got.err()
        );
        assert_eq!(budget.available(), 64 * 1024);
        let got = read_body(chunked(1, 10), Some(100_000), 1 << 20, &budget).await;
        assert!(matches!(got, Err(VerifyError::Overloaded)));
        let got = read_body(chunked(1, 10), Some(2 << 20), 1 << 20, &budget).await;
        assert!(matches!(got, Err(VerifyError::ImageTooLarge(_))));
    }
}
