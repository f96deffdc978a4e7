//! What a partner can put on the data channel: text frames are parsed with every limit, and
//! whatever parses re-encodes to the same frame; an image announcement takes the binary chunks
//! that follow (segments after 0xFF bytes), and a whole image is decoded before anyone sees it.
#![no_main]

use anonchat_protocol::chat::{self, ChatFrame, ImageAssembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut segments = data.split(|b| *b == 0xff);
    let Some(first) = segments.next() else { return };
    let Ok(frame) = chat::parse(&String::from_utf8_lossy(first)) else { return };
    assert_eq!(chat::parse(&frame.to_json()).as_ref(), Ok(&frame));
    if let ChatFrame::Msg { text, .. } = &frame {
        let _ = chat::contains_contact_details(text);
    }
    let Some(mut image) = ImageAssembler::new(&frame) else { return };
    for chunk in segments {
        match image.push(chunk) {
            Ok(None) => {}
            Ok(Some(whole)) => {
                let _ = anonchat_peer::image_check::check_image(&whole);
                return;
            }
            Err(_) => return,
        }
    }
});
