//! One chat in progress over an open link (WebRTC or libp2p): frames out, frames in, image
//! reassembly. The rules themselves live in [`anonchat_protocol::chat`].

use anonchat_protocol::chat::{self, ChatError, ChatFrame, ImageAssembler};

use crate::image_check;
use crate::transport::{ChatLink, Inbound};

/// What the partner did, as far as this chat is concerned.
#[derive(Debug)]
pub enum Received {
    Hello,
    Message {
        id: String,
        text: String,
        flagged: bool,
    },
    Ack {
        id: String,
    },
    Typing {
        on: bool,
    },
    /// A whole image, decoded successfully.
    Image {
        id: String,
        info: image_check::ImageInfo,
        data: Vec<u8>,
    },
    /// A chunk of an image still arriving.
    Nothing,
    /// `bye`, or the channel closed.
    Gone,
    /// A frame broke the rules; the chat goes on.
    Refused(ChatError),
}

pub struct Conversation {
    pub link: ChatLink,
    image: Option<ImageAssembler>,
    /// After a refused image announcement: its chunks are dropped until the next text frame.
    discarding: bool,
}

impl Conversation {
    pub fn new(link: ChatLink) -> Self {
        Conversation {
            link,
            image: None,
            discarding: false,
        }
    }

    pub async fn send(&self, frame: &ChatFrame) -> Result<(), String> {
        self.link.send_text(frame.to_json()).await
    }

    /// Announces an image (already checked) and sends its chunks.
    pub async fn send_image(&self, id: &str, mime: &str, data: &[u8]) -> Result<(), SendError> {
        let (header, chunks) = chat::image_frames(id, mime, data)?;
        self.send(&header).await.map_err(SendError::Channel)?;
        for chunk in chunks {
            self.link
                .send_binary(chunk)
                .await
                .map_err(SendError::Channel)?;
        }
        Ok(())
    }

    /// Sends `bye` and closes the connection.
    pub async fn end(&self) {
        let _ = self.send(&ChatFrame::Bye {}).await;
        self.link.close().await;
    }

    pub async fn recv(&mut self) -> Option<Inbound> {
        self.link.recv().await
    }

    pub fn on_inbound(&mut self, inbound: Inbound) -> Received {
        match inbound {
            Inbound::Closed => Received::Gone,
            Inbound::Text(text) => {
                self.discarding = false;
                if self.image.take().is_some() {
                    return Received::Refused(ChatError::BadChunks);
                }
                match chat::parse(&text) {
                    Err(e) => {
                        self.discarding = matches!(
                            e,
                            ChatError::ImageTooLarge | ChatError::ImageType | ChatError::BadChunks
                        );
                        Received::Refused(e)
                    }
                    Ok(ChatFrame::Hello { .. }) => Received::Hello,
                    Ok(ChatFrame::Msg { id, text }) => {
                        let flagged = chat::contains_contact_details(&text);
                        Received::Message { id, text, flagged }
                    }
                    Ok(ChatFrame::Ack { id }) => Received::Ack { id },
                    Ok(ChatFrame::Typing { on }) => Received::Typing { on },
                    Ok(ChatFrame::Bye {}) => Received::Gone,
                    Ok(header @ ChatFrame::Image { .. }) => {
                        self.image = ImageAssembler::new(&header);
                        Received::Nothing
                    }
                }
            }
            Inbound::Binary(chunk) => {
                if self.discarding {
                    return Received::Nothing;
                }
                let Some(assembler) = self.image.as_mut() else {
                    self.discarding = true;
                    return Received::Refused(ChatError::BadChunks);
                };
                match assembler.push(&chunk) {
                    Ok(None) => Received::Nothing,
                    Ok(Some(data)) => {
                        let assembler = self.image.take().expect("present");
                        match image_check::check_image(&data) {
                            Ok(info) if info.mime == assembler.mime => Received::Image {
                                id: assembler.id,
                                info,
                                data,
                            },
                            Ok(_) => Received::Refused(ChatError::ImageType),
                            Err(e) => Received::Refused(e),
                        }
                    }
                    Err(e) => {
                        self.image = None;
                        self.discarding = true;
                        Received::Refused(e)
                    }
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error("the channel refused it: {0}")]
    Channel(String),
}
