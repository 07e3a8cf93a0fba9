//! SPDY/3.1 framing, as much as the API server needs to speak Kubernetes' remote-command
//! protocol (`v4.channel.k8s.io`) to a kubelet on behalf of a WebSocket client: frame encoding
//! and decoding, the name/value header block, and a header compressor.
//!
//! Header blocks are zlib streams, one per direction per session. Ours is written as stored
//! (uncompressed) deflate blocks with no preset dictionary, which any inflater reads (Go's
//! spdystream among them: its zlib reader only checks the dictionary when the stream asks for
//! one). The blocks the peer sends are compressed with the SPDY/3 dictionary; nothing here
//! needs their contents (a reply is matched by its stream id), so they are kept as they came.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The protocol version of every control frame.
pub const VERSION: u16 = 3;
/// A stream's and the session's initial flow-control window (SPDY/3.1).
pub const INITIAL_WINDOW: u32 = 64 * 1024;
/// The longest payload a frame's 24-bit length can announce.
pub const MAX_PAYLOAD: usize = 0x00ff_ffff;

/// `FLAG_FIN` on a data frame or a SYN_STREAM/SYN_REPLY/HEADERS frame.
pub const FLAG_FIN: u8 = 0x01;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status `CANCEL`.
pub const RST_CANCEL: u32 = 5;

/// One SPDY/3.1 frame. Header blocks are kept compressed, as they travel.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        flags: u8,
        header_block: Bytes,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        header_block: Bytes,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        payload: Bytes,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        header_block: Bytes,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame of a type SPDY/3.1 does not define: ignored, as the spec asks.
    Unknown {
        kind: u16,
        flags: u8,
        payload: Bytes,
    },
}

/// A frame that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("malformed SPDY {0} frame")]
    Malformed(&'static str),
}

fn put_control(out: &mut BytesMut, kind: u16, flags: u8, payload_len: usize) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32((u32::from(flags) << 24) | (payload_len as u32 & 0x00ff_ffff));
}

impl Frame {
    /// Appends the frame's wire form to `out`. Payloads longer than [`MAX_PAYLOAD`] are the
    /// caller's mistake; data is cut into frames before it gets here.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                flags,
                header_block,
            } => {
                put_control(out, SYN_STREAM, *flags, 10 + header_block.len());
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32(associated_to & 0x7fff_ffff);
                out.put_u8((priority & 0x07) << 5);
                out.put_u8(0); // slot
                out.put_slice(header_block);
            }
            Frame::SynReply {
                stream_id,
                flags,
                header_block,
            }
            | Frame::Headers {
                stream_id,
                flags,
                header_block,
            } => {
                let kind = if matches!(self, Frame::SynReply { .. }) {
                    SYN_REPLY
                } else {
                    HEADERS
                };
                put_control(out, kind, *flags, 4 + header_block.len());
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_slice(header_block);
            }
            Frame::RstStream { stream_id, status } => {
                put_control(out, RST_STREAM, 0, 8);
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32(*status);
            }
            Frame::Settings { flags, payload } => {
                put_control(out, SETTINGS, *flags, payload.len());
                out.put_slice(payload);
            }
            Frame::Ping { id } => {
                put_control(out, PING, 0, 4);
                out.put_u32(*id);
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                put_control(out, GOAWAY, 0, 8);
                out.put_u32(last_good_stream_id & 0x7fff_ffff);
                out.put_u32(*status);
            }
            Frame::WindowUpdate { stream_id, delta } => {
                put_control(out, WINDOW_UPDATE, 0, 8);
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32(delta & 0x7fff_ffff);
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32((u32::from(*flags) << 24) | (data.len() as u32 & 0x00ff_ffff));
                out.put_slice(data);
            }
            Frame::Unknown {
                kind,
                flags,
                payload,
            } => {
                put_control(out, *kind, *flags, payload.len());
                out.put_slice(payload);
            }
        }
    }

    /// The frame's wire form.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    /// Takes one whole frame off the front of `buf`; `None` while more bytes are needed.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let word = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let flags = buf[4];
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            return Ok(None);
        }
        if word & 0x8000_0000 == 0 {
            buf.advance(8);
            let data = buf.split_to(len).freeze();
            return Ok(Some(Frame::Data {
                stream_id: word & 0x7fff_ffff,
                flags,
                data,
            }));
        }
        let version = ((word >> 16) & 0x7fff) as u16;
        let kind = (word & 0xffff) as u16;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        buf.advance(8);
        let mut p = buf.split_to(len).freeze();
        let need = |p: &Bytes, n: usize, what: &'static str| {
            if p.len() < n {
                Err(FrameError::Malformed(what))
            } else {
                Ok(())
            }
        };
        let frame = match kind {
            SYN_STREAM => {
                need(&p, 10, "SYN_STREAM")?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                let associated_to = p.get_u32() & 0x7fff_ffff;
                let priority = p.get_u8() >> 5;
                let _slot = p.get_u8();
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    flags,
                    header_block: p,
                }
            }
            SYN_REPLY | HEADERS => {
                need(&p, 4, "SYN_REPLY/HEADERS")?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                if kind == SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        flags,
                        header_block: p,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        flags,
                        header_block: p,
                    }
                }
            }
            RST_STREAM => {
                need(&p, 8, "RST_STREAM")?;
                Frame::RstStream {
                    stream_id: p.get_u32() & 0x7fff_ffff,
                    status: p.get_u32(),
                }
            }
            SETTINGS => Frame::Settings { flags, payload: p },
            PING => {
                need(&p, 4, "PING")?;
                Frame::Ping { id: p.get_u32() }
            }
            GOAWAY => {
                need(&p, 4, "GOAWAY")?;
                let last_good_stream_id = p.get_u32() & 0x7fff_ffff;
                // SPDY/2 peers send no status.
                let status = if p.len() >= 4 { p.get_u32() } else { 0 };
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                }
            }
            WINDOW_UPDATE => {
                need(&p, 8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate {
                    stream_id: p.get_u32() & 0x7fff_ffff,
                    delta: p.get_u32() & 0x7fff_ffff,
                }
            }
            kind => Frame::Unknown {
                kind,
                flags,
                payload: p,
            },
        };
        Ok(Some(frame))
    }
}

/// The uncompressed name/value block of SPDY/3: a count, then length-prefixed names and
/// values (names lower case, as SPDY requires).
pub fn name_value_block(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Reads an uncompressed name/value block; `None` when it is cut short.
pub fn parse_name_value_block(mut b: &[u8]) -> Option<Vec<(String, String)>> {
    fn take<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        if b.len() < 4 {
            return None;
        }
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let rest = b.get(4..4 + n)?;
        *b = &b[4 + n..];
        Some(rest)
    }
    if b.len() < 4 {
        return None;
    }
    let count = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    b = &b[4..];
    let mut out = Vec::new();
    for _ in 0..count {
        let name = String::from_utf8_lossy(take(&mut b)?).into_owned();
        let value = String::from_utf8_lossy(take(&mut b)?).into_owned();
        out.push((name, value));
    }
    Some(out)
}

/// An empty stored deflate block, what a zlib sync flush ends with.
const SYNC_MARKER: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];

/// The sending side's header compression context: one zlib stream for the whole session,
/// each header block written as stored deflate blocks ending in a sync-flush marker, so every
/// frame's block is complete and byte-aligned; the stream is never finished.
#[derive(Default)]
pub struct HeaderCompressor {
    started: bool,
}

impl HeaderCompressor {
    /// The next header block, as it goes into a frame.
    pub fn compress(&mut self, block: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(block.len() + 8);
        if !self.started {
            // CMF: deflate, 32 KiB window; FLG: no preset dictionary, check bits.
            out.put_slice(&[0x78, 0x01]);
            self.started = true;
        }
        for chunk in block.chunks(0xffff) {
            let n = chunk.len() as u16;
            // BFINAL 0, BTYPE 00 (stored), padding to the byte boundary.
            out.put_u8(0);
            out.put_u16_le(n);
            out.put_u16_le(!n);
            out.put_slice(chunk);
        }
        // The sync-flush marker, an empty stored block: an inflater hands out what it has
        // when it reaches it (Go's does not before), so the block is readable within its frame.
        out.put_slice(&SYNC_MARKER);
        out.freeze()
    }
}

/// Reads frames off a byte stream.
pub struct FrameReader<R> {
    io: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(io: R) -> Self {
        FrameReader {
            io,
            buf: BytesMut::with_capacity(16 * 1024),
        }
    }

    /// The next frame; `None` at a clean end of the stream.
    pub async fn next(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = Frame::decode(&mut self.buf)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
            {
                return Ok(Some(frame));
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: Frame) {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        buf.put_slice(b"next");
        let back = Frame::decode(&mut buf).unwrap().unwrap();
        assert_eq!(back, frame);
        assert_eq!(&buf[..], b"next", "decode takes exactly one frame");
    }

    #[test]
    fn frames_round_trip() {
        round_trip(Frame::SynStream {
            stream_id: 3,
            associated_to: 0,
            priority: 2,
            flags: FLAG_FIN,
            header_block: Bytes::from_static(b"\x78\x01abc"),
        });
        round_trip(Frame::SynReply {
            stream_id: 5,
            flags: 0,
            header_block: Bytes::from_static(b"xyz"),
        });
        round_trip(Frame::Headers {
            stream_id: 7,
            flags: FLAG_FIN,
            header_block: Bytes::new(),
        });
        round_trip(Frame::RstStream {
            stream_id: 9,
            status: RST_CANCEL,
        });
        round_trip(Frame::Ping { id: 2 });
        round_trip(Frame::GoAway {
            last_good_stream_id: 11,
            status: 0,
        });
        round_trip(Frame::WindowUpdate {
            stream_id: 0,
            delta: 4096,
        });
        round_trip(Frame::Data {
            stream_id: 1,
            flags: FLAG_FIN,
            data: Bytes::from(vec![7u8; 70_000]),
        });
        round_trip(Frame::Settings {
            flags: 0,
            payload: Bytes::from_static(&[0, 0, 0, 0]),
        });
        round_trip(Frame::Unknown {
            kind: 42,
            flags: 0,
            payload: Bytes::from_static(b"?"),
        });
    }

    #[test]
    fn wire_layout_is_spdy3() {
        let b = Frame::Data {
            stream_id: 3,
            flags: FLAG_FIN,
            data: Bytes::from_static(b"hi"),
        }
        .to_bytes();
        assert_eq!(&b[..], &[0, 0, 0, 3, 1, 0, 0, 2, b'h', b'i']);
        let b = Frame::WindowUpdate {
            stream_id: 1,
            delta: INITIAL_WINDOW,
        }
        .to_bytes();
        assert_eq!(&b[..], &[0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0, 1, 0, 0]);
        let b = Frame::Ping { id: 1 }.to_bytes();
        assert_eq!(&b[..], &[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
    }

    #[test]
    fn partial_and_bad_frames() {
        let whole = Frame::Ping { id: 1 }.to_bytes();
        let mut buf = BytesMut::from(&whole[..7]);
        assert_eq!(Frame::decode(&mut buf), Ok(None));
        buf.put_slice(&whole[7..11]);
        assert_eq!(Frame::decode(&mut buf), Ok(None), "payload cut short");
        buf.put_slice(&whole[11..]);
        assert_eq!(Frame::decode(&mut buf), Ok(Some(Frame::Ping { id: 1 })));
        let mut v2 = BytesMut::from(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert_eq!(Frame::decode(&mut v2), Err(FrameError::Version(2)));
        let mut short = BytesMut::from(&[0x80, 3, 0, 3, 0, 0, 0, 2, 0, 1][..]);
        assert_eq!(
            Frame::decode(&mut short),
            Err(FrameError::Malformed("RST_STREAM"))
        );
    }

    #[test]
    fn header_blocks_are_readable_by_a_standard_inflater() {
        let mut comp = HeaderCompressor::default();
        let first = name_value_block(&[("streamType", "error")]);
        let second = name_value_block(&[("streamtype", "stdin"), ("x", &"v".repeat(70_000))]);
        let a = comp.compress(&first);
        let b = comp.compress(&second);
        let c = comp.compress(&[]);
        // One zlib stream across frames, read frame by frame as spdystream does.
        let mut inflate = flate2::Decompress::new(true);
        let mut read = |input: &[u8]| {
            let mut out = Vec::with_capacity(200_000);
            inflate
                .decompress_vec(input, &mut out, flate2::FlushDecompress::Sync)
                .unwrap();
            out
        };
        let out_a = read(&a);
        assert_eq!(
            parse_name_value_block(&out_a).unwrap(),
            vec![("streamtype".to_string(), "error".to_string())],
            "names are lower-cased"
        );
        let out_b = read(&b);
        assert_eq!(out_b, second);
        assert!(read(&c).is_empty());
        assert!(a.ends_with(&SYNC_MARKER) && c.ends_with(&SYNC_MARKER));
        assert_eq!(a.len(), 2 + 5 + first.len() + 5);
        assert!(parse_name_value_block(&[0, 0, 0, 1, 0, 0, 0, 9, b'x']).is_none());
    }

    #[tokio::test]
    async fn reader_splits_a_byte_stream_into_frames() {
        let mut wire = BytesMut::new();
        Frame::Ping { id: 2 }.encode(&mut wire);
        Frame::Data {
            stream_id: 1,
            flags: 0,
            data: Bytes::from_static(b"out"),
        }
        .encode(&mut wire);
        let mut r = FrameReader::new(&wire[..]);
        assert_eq!(r.next().await.unwrap(), Some(Frame::Ping { id: 2 }));
        assert!(matches!(r.next().await.unwrap(), Some(Frame::Data { data, .. }) if data == "out"));
        assert_eq!(r.next().await.unwrap(), None);
        let mut cut = FrameReader::new(&wire[..5]);
        assert!(cut.next().await.is_err());
    }
}
