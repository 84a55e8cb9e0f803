//! The wire format: messages ([`message`]), path attributes ([`attribute`]), code points
//! ([`iana`]) and errors ([`error`]), plus the stream reassembler ([`Framer`]) that cuts a
//! TCP byte stream into messages.
//!
//! Decoding and encoding take the negotiated session state as an argument ([`DecodeCxt`],
//! [`EncodeCxt`]): whether 4-octet AS numbers were negotiated changes how AS_PATH and
//! AGGREGATOR look on the wire. ADD-PATH is never negotiated by this crate, so NLRI carry no
//! path identifiers.

pub mod attribute;
pub mod error;
pub mod iana;
pub mod message;

use std::ops::Range;

use self::{
    error::{DecodeError, DecodeErrorKind},
    iana::MessageType,
};

/// Length of the common header: marker (16), length (2), type (1).
pub const HEADER_LEN: usize = 19;
/// Largest message without the Extended Message capability (RFC 4271 §4).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// The header marker: all ones (RFC 4271 §4.1).
pub const MARKER: [u8; 16] = [0xff; 16];

/// Negotiated state that changes how received messages decode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeCxt {
    /// Both sides sent the 4-octet AS capability (RFC 6793): AS_PATH and AGGREGATOR carry
    /// 4-octet AS numbers and AS4_PATH / AS4_AGGREGATOR must not appear.
    pub four_octet_as: bool,
}

/// Negotiated state that changes how sent messages encode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeCxt {
    /// See [`DecodeCxt::four_octet_as`]. When false, AS numbers above 65535 go out as
    /// AS_TRANS with the real path in AS4_PATH (RFC 6793 §4.2.2).
    pub four_octet_as: bool,
}

/// A bounds-checked cursor over one structure of a message.
///
/// Every read either succeeds or returns [`DecodeErrorKind::Truncated`]; offsets in errors
/// are absolute (from the start of the message).
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` from the start of the message.
    base: usize,
    message: MessageType,
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(buf: &'a [u8], base: usize, message: MessageType) -> Self {
        Self {
            buf,
            pos: 0,
            base,
            message,
        }
    }

    /// Absolute offset of the next octet.
    pub(crate) const fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) const fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) const fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) const fn message(&self) -> MessageType {
        self.message
    }

    /// An error at the current offset.
    pub(crate) const fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(self.message, self.offset(), kind)
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let out = self
            .buf
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| {
                self.error(DecodeErrorKind::Truncated {
                    what,
                    needed: n,
                    available: self.remaining(),
                })
            })?;
        self.pos += n;
        Ok(out)
    }

    /// A reader over the next `n` octets (a nested length-delimited structure).
    pub(crate) fn sub(&mut self, n: usize, what: &'static str) -> Result<Self, DecodeError> {
        let base = self.offset();
        let buf = self.take(n, what)?;
        Ok(Self::new(buf, base, self.message))
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Fails unless everything was read (RFC structures that must fill their space).
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.error(DecodeErrorKind::TrailingBytes(self.remaining())))
        }
    }
}

/// Appends a message header with a zero length; returns the position to back-fill with
/// [`finish_message`].
pub(crate) fn start_message(out: &mut Vec<u8>, kind: MessageType) -> usize {
    let start = out.len();
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&[0, 0, kind.0]);
    start
}

/// Back-fills the length of the message that starts at `start`; fails (and removes the
/// message) if it exceeds [`MAX_MESSAGE_LEN`].
pub(crate) fn finish_message(out: &mut Vec<u8>, start: usize) -> Result<(), error::EncodeError> {
    let len = out.len() - start;
    if len > MAX_MESSAGE_LEN {
        out.truncate(start);
        return Err(error::EncodeError::TooLong(len));
    }
    // `len` ≤ 4096 fits in u16; `start + 16..start + 18` lies inside the header written by
    // `start_message`.
    let field = (len as u16).to_be_bytes();
    if let Some(dst) = out.get_mut(start + 16..start + 18) {
        dst.copy_from_slice(&field);
    }
    Ok(())
}

/// Reassembles messages from a TCP byte stream.
///
/// Push received bytes with [`push`](Self::push), then call [`next_message`](Self::next_message) until it
/// returns `Ok(None)`. Each message is checked for the all-ones marker and a length between
/// 19 and 4096 (RFC 4271 §6.1) as soon as its header is complete; an error leaves the framer
/// poisoned (the session must be reset, and later bytes are meaningless).
#[derive(Clone, Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
    poisoned: bool,
}

impl Framer {
    /// An empty framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.poisoned {
            return;
        }
        // Compact before growing: move the unread tail to the front when it is cheap.
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.len() / 2) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Octets received but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Drops everything buffered and clears the poisoned state (a new connection).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.poisoned = false;
    }

    /// The next complete message, header included, or `None` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        match self.next_range()? {
            Some(r) => Ok(self.buf.get(r)),
            None => Ok(None),
        }
    }

    fn next_range(&mut self) -> Result<Option<Range<usize>>, DecodeError> {
        if self.poisoned {
            return Ok(None);
        }
        let Some(header) = self.buf.get(self.start..self.start + HEADER_LEN) else {
            return Ok(None);
        };
        let err = |offset, kind| DecodeError::new(MessageType(0), offset, kind);
        let (marker, [hi, lo, _kind]) = header.split_at(16) else {
            return Ok(None);
        };
        if marker != MARKER {
            self.poisoned = true;
            return Err(err(0, DecodeErrorKind::ConnectionNotSynchronized));
        }
        let len = u16::from_be_bytes([*hi, *lo]);
        if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&usize::from(len)) {
            self.poisoned = true;
            return Err(err(16, DecodeErrorKind::BadMessageLength(len)));
        }
        let end = self.start + usize::from(len);
        if end > self.buf.len() {
            return Ok(None);
        }
        let r = self.start..end;
        self.start = end;
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keepalive() -> Vec<u8> {
        let mut v = MARKER.to_vec();
        v.extend_from_slice(&[0, 19, 4]);
        v
    }

    #[test]
    fn framer_cuts_byte_by_byte() {
        let mut stream = keepalive();
        stream.extend(keepalive());
        let mut f = Framer::new();
        let mut got = 0;
        for b in &stream {
            f.push(std::slice::from_ref(b));
            while let Some(m) = f.next_message().unwrap() {
                assert_eq!(m, keepalive().as_slice());
                got += 1;
            }
        }
        assert_eq!(got, 2);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn framer_rejects_bad_marker_and_length() {
        let mut f = Framer::new();
        let mut m = keepalive();
        m[3] = 0;
        f.push(&m);
        assert_eq!(
            f.next_message().unwrap_err().kind,
            DecodeErrorKind::ConnectionNotSynchronized
        );
        // Poisoned: nothing more comes out.
        f.push(&keepalive());
        assert_eq!(f.next_message().unwrap(), None);

        for len in [0u16, 18, 4097, 65535] {
            let mut f = Framer::new();
            let mut m = keepalive();
            m[16..18].copy_from_slice(&len.to_be_bytes());
            f.push(&m);
            assert_eq!(
                f.next_message().unwrap_err().kind,
                DecodeErrorKind::BadMessageLength(len)
            );
        }
    }

    #[test]
    fn framer_waits_for_the_whole_message() {
        let mut f = Framer::new();
        let mut m = MARKER.to_vec();
        m.extend_from_slice(&[0, 23, 5, 0, 1, 0]);
        f.push(&m);
        assert_eq!(f.next_message().unwrap(), None);
        f.push(&[1]);
        assert_eq!(f.next_message().unwrap().map(<[u8]>::len), Some(23));
    }

    #[test]
    fn reader_bounds() {
        let data = [1u8, 2, 3, 4, 5];
        let mut r = Reader::new(&data, 10, MessageType::UPDATE);
        assert_eq!(r.u16("a").unwrap(), 0x0102);
        let mut s = r.sub(2, "s").unwrap();
        assert_eq!(s.offset(), 12);
        assert_eq!(s.u8("b").unwrap(), 3);
        assert!(s.finish().is_err());
        let e = r.u16("c").unwrap_err();
        assert_eq!(e.offset, 14);
        assert!(matches!(
            e.kind,
            DecodeErrorKind::Truncated {
                needed: 2,
                available: 1,
                ..
            }
        ));
    }
}
