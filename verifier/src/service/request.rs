//! Reading a `POST /v1/verify` body — multipart or JSON — into an image, a device key and a
//! gender mode. Every copy of the image this module makes is zeroized when dropped.

use std::time::Duration;

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use futures_util::stream;
use http_body_util::BodyExt;
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use crate::error::VerifyError;
use crate::pipeline::GenderMode;
use crate::token::public_key_from_base64url;

/// A parsed verification request.
pub struct VerifyRequest {
    pub image: Zeroizing<Vec<u8>>,
    pub public_key: VerifyingKey,
    pub mode: GenderMode,
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

/// Reads the whole body, refusing more than `limit` bytes as soon as it is exceeded. Each
/// network buffer is wiped after it is copied, when this is its only owner.
pub async fn read_body(body: Body, limit: usize) -> Result<Zeroizing<Vec<u8>>, VerifyError> {
    let mut body = body;
    let mut out = Zeroizing::new(Vec::new());
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
                return Err(VerifyError::ImageTooLarge(format!(
                    "the request body is over {limit} bytes"
                )));
            }
            out.extend_from_slice(&data);
            wipe_bytes(data);
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(result) => result.map(|()| out),
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
) -> Result<VerifyRequest, VerifyError> {
    let content_type = content_type.unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "multipart/form-data" => parse_multipart(content_type, body, max_image).await,
        "application/json" => parse_json(&body, max_image),
        _ => Err(VerifyError::BadRequest(
            "send multipart/form-data (image, public_key, gender) or application/json".into(),
        )),
    }
}

async fn parse_multipart(
    content_type: &str,
    body: Zeroizing<Vec<u8>>,
    max_image: usize,
) -> Result<VerifyRequest, VerifyError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| VerifyError::BadRequest("multipart body without a boundary".into()))?;
    let body = Bytes::from_owner(Wiped(body));
    let stream = stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let bad = |what: &str| VerifyError::BadRequest(format!("malformed multipart body: {what}"));

    let mut image: Option<Zeroizing<Vec<u8>>> = None;
    let mut public_key: Option<String> = None;
    let mut gender: Option<String> = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|_| bad("unreadable part"))?
    {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "image" => {
                let mut data = Zeroizing::new(Vec::new());
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|_| bad("truncated image part"))?
                {
                    if data.len() + chunk.len() > max_image {
                        return Err(VerifyError::ImageTooLarge(format!(
                            "the image is over {max_image} bytes"
                        )));
                    }
                    data.extend_from_slice(&chunk);
                    wipe_bytes(chunk);
                }
                image = Some(data);
            }
            "public_key" | "gender" => {
                let text = field
                    .text()
                    .await
                    .map_err(|_| bad("unreadable text part"))?;
                if text.len() > 256 {
                    return Err(VerifyError::BadRequest(format!("field {name} is too long")));
                }
                if name == "public_key" {
                    public_key = Some(text)
                } else {
                    gender = Some(text)
                }
            }
            other => {
                return Err(VerifyError::BadRequest(format!(
                    "unexpected field {:?}; the fields are image, public_key and gender",
                    other.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    finish(image, public_key.as_deref(), gender.as_deref())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonBody {
    image: Option<Zeroizing<String>>,
    public_key: Option<String>,
    gender: Option<String>,
}

fn parse_json(body: &[u8], max_image: usize) -> Result<VerifyRequest, VerifyError> {
    let parsed: JsonBody = serde_json::from_slice(body).map_err(|e| {
        // serde's message names the field or the position, never the value.
        VerifyError::BadRequest(format!(
            "invalid JSON body: {}",
            e.to_string().chars().take(200).collect::<String>()
        ))
    })?;
    let image = match parsed.image.as_deref() {
        Some(text) => Some(decode_image_text(text, max_image)?),
        None => None,
    };
    finish(
        image,
        parsed.public_key.as_deref(),
        parsed.gender.as_deref(),
    )
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
    image: Option<Zeroizing<Vec<u8>>>,
    public_key: Option<&str>,
    gender: Option<&str>,
) -> Result<VerifyRequest, VerifyError> {
    let image = image.ok_or_else(|| VerifyError::BadRequest("missing field image".into()))?;
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
        image,
        public_key,
        mode,
    })
}
