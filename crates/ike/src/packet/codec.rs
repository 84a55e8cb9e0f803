//! The bounds-checked cursor every decoder in this crate reads through, and the small
//! helpers encoders write through.
//!
//! Modelled on rustls's `Reader` (`rustls/src/msgs/codec.rs`): every read either returns
//! the bytes or a [`DecodeError`] carrying the absolute offset; [`Reader::sub`] carves out
//! a child reader for a nested length, and [`Reader::finish`] rejects trailing bytes. No
//! method indexes a slice or panics, whatever the input.

use crate::error::{ApiMisuse, DecodeError, DecodeErrorKind, Error};

/// A cursor over an untrusted byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf[0]` in the outermost buffer, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self::at(buf, 0)
    }

    pub(crate) fn at(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Absolute offset of the next unread byte.
    pub(crate) fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn error(&self, kind: DecodeErrorKind) -> Error {
        Error::Malformed(DecodeError::new(self.offset(), kind))
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(self.error(DecodeErrorKind::Truncated {
                needed: n,
                remaining: self.remaining(),
            })),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        rest
    }

    /// A child reader over the next `n` bytes; this reader moves past them.
    pub(crate) fn sub(&mut self, n: usize) -> Result<Self, Error> {
        let base = self.offset();
        let bytes = self.take(n)?;
        Ok(Self::at(bytes, base))
    }

    /// Succeeds only if every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), Error> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.error(DecodeErrorKind::TrailingBytes(n))),
        }
    }
}

/// Appends a big-endian `u16` length placeholder and returns where it is.
pub(crate) fn placeholder16(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    at
}

/// Writes `out.len() - start` into the 16-bit length field at `at`.
pub(crate) fn backfill16(
    out: &mut [u8],
    at: usize,
    start: usize,
    what: &'static str,
) -> Result<(), Error> {
    let length = out.len().saturating_sub(start);
    let value = u16::try_from(length).map_err(|_| ApiMisuse::TooLong { what, length })?;
    match out.get_mut(at..at + 2) {
        Some(field) => {
            field.copy_from_slice(&value.to_be_bytes());
            Ok(())
        }
        None => Err(ApiMisuse::Other("length placeholder out of range").into()),
    }
}

/// Converts a count or length to the field width, or reports which structure overflowed.
pub(crate) fn fit<T: TryFrom<usize>>(value: usize, what: &'static str) -> Result<T, Error> {
    T::try_from(value).map_err(|_| {
        ApiMisuse::TooLong {
            what,
            length: value,
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_never_reads_past_the_end() {
        let mut r = Reader::at(&[1, 2, 3], 10);
        assert_eq!(r.u16().unwrap(), 0x0102);
        let e = r.u16().unwrap_err();
        assert_eq!(
            e,
            Error::Malformed(DecodeError::new(
                12,
                DecodeErrorKind::Truncated {
                    needed: 2,
                    remaining: 1
                }
            ))
        );
        assert_eq!(r.u8().unwrap(), 3);
        assert!(r.take(usize::MAX).is_err());
        assert!(r.finish().is_ok());
    }

    #[test]
    fn sub_reader_carries_absolute_offsets_and_rejects_trailing_bytes() {
        let mut r = Reader::new(&[0, 0, 7, 8, 9, 0]);
        r.take(2).unwrap();
        let mut s = r.sub(3).unwrap();
        assert_eq!(s.offset(), 2);
        assert_eq!(s.u8().unwrap(), 7);
        let e = s.finish().unwrap_err();
        assert!(matches!(
            e,
            Error::Malformed(DecodeError {
                offset: 3,
                kind: DecodeErrorKind::TrailingBytes(2),
                ..
            })
        ));
        assert_eq!(r.remaining(), 1);
    }

    #[test]
    fn backfill_rejects_overflow() {
        let mut out = Vec::new();
        let at = placeholder16(&mut out);
        out.resize(70_000, 0);
        assert!(matches!(
            backfill16(&mut out, at, 0, "x"),
            Err(Error::ApiMisuse(ApiMisuse::TooLong { .. }))
        ));
    }
}
