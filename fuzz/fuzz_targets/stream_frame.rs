//! What a partner can put on the libp2p chat stream: the decoder never buffers past its limit,
//! never panics, and whatever it decodes re-encodes to the very bytes it consumed (text that was
//! not UTF-8 comes out replaced, so only valid text is compared).
#![no_main]

use anonchat_protocol::stream_codec::{MAX_FRAME_BYTES, StreamCodec, StreamFrame};
use asynchronous_codec::{Decoder, Encoder};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input into reads of varying size, as a socket would.
    let Some((&step, data)) = data.split_first() else { return };
    let step = usize::from(step).max(1);
    let mut buf = BytesMut::new();
    let mut consumed = 0;
    for read in data.chunks(step) {
        buf.extend_from_slice(read);
        loop {
            let before = buf.len();
            match StreamCodec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let raw = &data[consumed..consumed + before - buf.len()];
                    consumed += before - buf.len();
                    let valid = match &frame {
                        StreamFrame::Text(_) => std::str::from_utf8(&raw[5..]).is_ok(),
                        StreamFrame::Binary(_) => true,
                    };
                    if valid {
                        let mut again = BytesMut::new();
                        StreamCodec.encode(frame, &mut again).expect("a decoded frame encodes");
                        assert_eq!(&again[..], raw);
                    }
                }
                Ok(None) => {
                    assert!(buf.len() < MAX_FRAME_BYTES + 4);
                    break;
                }
                Err(_) => return,
            }
        }
    }
});
