//! The framing of the libp2p chat stream `/anonchat/chat/1`, as a pure codec (no I/O): a 4-byte
//! big-endian length, then a kind byte (0: a JSON text frame, 1: a binary image chunk) and the
//! payload; the length counts the kind byte. The partner controls every byte, so a length is
//! checked before anything is buffered for it; a bad length or kind ends the stream, while bad
//! text (even invalid UTF-8) is passed on for the chat layer to refuse.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Largest frame either side accepts, kind byte included (an image chunk is 16 KiB; a text frame
/// less).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
const TEXT: u8 = 0;
const BINARY: u8 = 1;
const HEADER: usize = 4;

/// One frame of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFrame {
    Text(String),
    Binary(Bytes),
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("a frame of {0} bytes (1 to {MAX_FRAME_BYTES} allowed)")]
    Size(usize),
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Encodes and decodes [`StreamFrame`]s (for `asynchronous_codec`'s framed reader and writer).
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamCodec;

impl asynchronous_codec::Decoder for StreamCodec {
    type Item = StreamFrame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<StreamFrame>, FrameError> {
        let Some(header) = src.get(..HEADER) else {
            return Ok(None);
        };
        let length = u32::from_be_bytes(header.try_into().expect("four bytes")) as usize;
        if length == 0 || length > MAX_FRAME_BYTES {
            return Err(FrameError::Size(length));
        }
        if src.len() < HEADER + length {
            src.reserve(HEADER + length - src.len());
            return Ok(None);
        }
        src.advance(HEADER);
        let kind = src.get_u8();
        let payload = src.split_to(length - 1).freeze();
        match kind {
            // Bad text is the chat layer's to refuse (the stream itself is intact).
            TEXT => Ok(Some(StreamFrame::Text(
                String::from_utf8_lossy(&payload).into_owned(),
            ))),
            BINARY => Ok(Some(StreamFrame::Binary(payload))),
            other => Err(FrameError::Kind(other)),
        }
    }
}

impl asynchronous_codec::Encoder for StreamCodec {
    type Item<'a> = StreamFrame;
    type Error = FrameError;

    fn encode(&mut self, frame: StreamFrame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let (kind, payload): (u8, &[u8]) = match &frame {
            StreamFrame::Text(text) => (TEXT, text.as_bytes()),
            StreamFrame::Binary(bytes) => (BINARY, bytes),
        };
        let length = payload.len() + 1;
        if length > MAX_FRAME_BYTES {
            return Err(FrameError::Size(length));
        }
        dst.reserve(HEADER + length);
        dst.put_u32(length as u32);
        dst.put_u8(kind);
        dst.put_slice(payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asynchronous_codec::{Decoder, Encoder};

    fn encoded(frames: &[StreamFrame]) -> BytesMut {
        let mut buf = BytesMut::new();
        for f in frames {
            StreamCodec.encode(f.clone(), &mut buf).unwrap();
        }
        buf
    }

    #[test]
    fn frames_survive_the_round_trip_even_a_byte_at_a_time() {
        let frames = [
            StreamFrame::Text(r#"{"type":"msg","id":"1","text":"héllo"}"#.into()),
            StreamFrame::Binary(Bytes::from(vec![7u8; 16 * 1024])),
            StreamFrame::Text(String::new()),
        ];
        let wire = encoded(&frames);
        let first = match &frames[0] {
            StreamFrame::Text(t) => t.len() as u8 + 1,
            StreamFrame::Binary(_) => unreachable!(),
        };
        assert_eq!(&wire[..5], &[0, 0, 0, first, TEXT]);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for byte in wire {
            buf.put_u8(byte);
            while let Some(f) = StreamCodec.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
        assert!(buf.is_empty());
    }

    #[test]
    fn hostile_frames_are_refused_before_anything_is_buffered() {
        let mut huge = BytesMut::from(&(MAX_FRAME_BYTES as u32 + 1).to_be_bytes()[..]);
        assert!(matches!(
            StreamCodec.decode(&mut huge),
            Err(FrameError::Size(n)) if n == MAX_FRAME_BYTES + 1
        ));
        assert!(huge.capacity() < 1024);
        let mut empty = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert!(matches!(
            StreamCodec.decode(&mut empty),
            Err(FrameError::Size(0))
        ));
        let mut kind = BytesMut::from(&[0u8, 0, 0, 2, 9, 1][..]);
        assert!(matches!(
            StreamCodec.decode(&mut kind),
            Err(FrameError::Kind(9))
        ));
        let mut latin1 = BytesMut::from(&[0u8, 0, 0, 2, TEXT, 0xe9][..]);
        assert_eq!(
            StreamCodec.decode(&mut latin1).unwrap(),
            Some(StreamFrame::Text("\u{fffd}".into()))
        );
    }

    #[test]
    fn the_largest_frame_passes_and_one_byte_more_does_not() {
        let most = StreamFrame::Binary(Bytes::from(vec![1u8; MAX_FRAME_BYTES - 1]));
        let mut wire = encoded(std::slice::from_ref(&most));
        assert_eq!(StreamCodec.decode(&mut wire).unwrap(), Some(most));
        let too_many = StreamFrame::Binary(Bytes::from(vec![1u8; MAX_FRAME_BYTES]));
        assert!(matches!(
            StreamCodec.encode(too_many, &mut BytesMut::new()),
            Err(FrameError::Size(_))
        ));
    }
}
