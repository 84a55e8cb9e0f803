//! Anti-replay: a sliding bitmap window ([RFC 6479]) over 64-bit sequence numbers, and the
//! recovery of the high half of an Extended Sequence Number ([RFC 4303] Appendix A).
//!
//! The window tracks the `size` sequence numbers ending at the highest one authenticated so
//! far (`top`). As in RFC 6479 the bitmap is a ring of 64-bit blocks with at least one block
//! more than the window needs, so that sliding right only ever zeroes whole blocks and
//! never shifts bits. The ring length is a power of two, so locating a bit is a mask.
//!
//! Without ESN a sequence number is its 32-bit wire value and never wraps (the sender must
//! rekey first, [RFC 4303] §3.3.3). With ESN the wire carries the low 32 bits; the window
//! works on the full 64-bit value that [`ReplayWindow::infer_esn`] reconstructs, so crossing
//! a 2^32 boundary is just another step to the right.
//!
//! [RFC 6479]: https://www.rfc-editor.org/rfc/rfc6479
//! [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#appendix-A

/// Why the window refused a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Inside the window and already received.
    #[error("duplicate")]
    Duplicate,
    /// Left of the window (or zero, which no sender uses): can no longer be checked.
    #[error("left of the window")]
    TooOld,
}

/// The window size is outside the supported range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("replay window of {0} packets is outside {min}..={max}", min = ReplayWindow::MIN_SIZE, max = ReplayWindow::MAX_SIZE)]
pub struct WindowSizeError(pub u32);

const BLOCK_BITS: u64 = 64;

/// An anti-replay window for one inbound SA.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Window size in packets, a multiple of 64.
    size: u64,
    /// Highest sequence number accepted so far; 0 before the first.
    top: u64,
    /// Ring of bitmap blocks; bit `seq % 64` of block `(seq / 64) & mask`.
    blocks: Box<[u64]>,
    mask: u64,
}

impl std::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("size", &self.size)
            .field("top", &self.top)
            .finish_non_exhaustive()
    }
}

impl ReplayWindow {
    /// Default window size: 1024 packets.
    pub const DEFAULT_SIZE: u32 = 1024;
    /// Smallest window size accepted (RFC 4303 §3.4.3 asks for at least 32; 64 is one block).
    pub const MIN_SIZE: u32 = 64;
    /// Largest window size accepted.
    pub const MAX_SIZE: u32 = 1 << 16;

    /// Creates an empty window of `size` packets, rounded up to a multiple of 64.
    pub fn new(size: u32) -> Result<Self, WindowSizeError> {
        if !(Self::MIN_SIZE..=Self::MAX_SIZE).contains(&size) {
            return Err(WindowSizeError(size));
        }
        let size = u64::from(size).div_ceil(BLOCK_BITS) * BLOCK_BITS;
        // One spare block (RFC 6479 §2) so the block holding `top - size + 1` survives a
        // slide; a power of two so the block index is a mask.
        let nblocks = (size / BLOCK_BITS + 1).next_power_of_two();
        Ok(Self {
            size,
            top: 0,
            blocks: vec![0; nblocks as usize].into_boxed_slice(),
            mask: nblocks - 1,
        })
    }

    /// Window size in packets.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Highest sequence number accepted so far (0 before any).
    pub fn top(&self) -> u64 {
        self.top
    }

    fn locate(&self, seq: u64) -> (usize, u64) {
        // `mask < blocks.len()` by construction, so the index is in bounds; it fits usize
        // because the ring has at most MAX_SIZE / 64 * 2 blocks.
        (
            ((seq / BLOCK_BITS) & self.mask) as usize,
            1 << (seq % BLOCK_BITS),
        )
    }

    /// Whether `seq` would be accepted, without recording it. Call before spending cycles on
    /// the ICV ([RFC 4303] §3.4.3: duplicates are rejected before integrity verification).
    ///
    /// [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-3.4.3
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::TooOld);
        }
        if seq > self.top {
            return Ok(());
        }
        if self.top - seq >= self.size {
            return Err(ReplayError::TooOld);
        }
        let (block, bit) = self.locate(seq);
        match self.blocks.get(block) {
            Some(b) if b & bit == 0 => Ok(()),
            _ => Err(ReplayError::Duplicate),
        }
    }

    /// Checks `seq` and records it. Call only once the packet has authenticated (the window
    /// "is updated only if the integrity verification succeeds", [RFC 4303] §3.4.3).
    ///
    /// [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#section-3.4.3
    pub fn accept(&mut self, seq: u64) -> Result<(), ReplayError> {
        self.check(seq)?;
        if seq > self.top {
            let from = self.top / BLOCK_BITS;
            let to = seq / BLOCK_BITS;
            // Zero the blocks the window slides onto; after a jump of a whole ring, all.
            let steps = (to - from).min(self.mask + 1);
            for i in 1..=steps {
                let idx = ((from + i) & self.mask) as usize;
                if let Some(b) = self.blocks.get_mut(idx) {
                    *b = 0;
                }
            }
            self.top = seq;
        }
        let (block, bit) = self.locate(seq);
        if let Some(b) = self.blocks.get_mut(block) {
            *b |= bit;
        }
        Ok(())
    }

    /// Reconstructs the 64-bit sequence number of a packet whose wire field is `seq_low`,
    /// as [RFC 4303] Appendix A2.1 does: assume the packet lies in the window or to its
    /// right, in the 2^32 subspace that makes that true.
    ///
    /// Returns `None` when the only candidate lies below 1 or above 2^64 - 1. A wrong guess
    /// (a packet from far away) fails the ICV, because the high bits are authenticated.
    ///
    /// [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303#appendix-A.2.1
    pub fn infer_esn(&self, seq_low: u32) -> Option<u64> {
        let th = (self.top >> 32) as u32;
        let tl = self.top as u32;
        // size <= MAX_SIZE < 2^32.
        let w_minus_1 = (self.size - 1) as u32;
        let seq_high = if tl >= w_minus_1 {
            // Case A: the window lies within one subspace.
            if seq_low >= tl - w_minus_1 {
                th
            } else {
                th.checked_add(1)?
            }
        } else {
            // Case B: the window spans the boundary with the previous subspace.
            if seq_low >= tl.wrapping_sub(w_minus_1) {
                th.checked_sub(1)?
            } else {
                th
            }
        };
        Some((u64::from(seq_high) << 32) | u64::from(seq_low))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert!(ReplayWindow::new(32).is_err());
        assert!(ReplayWindow::new(1 << 17).is_err());
        assert_eq!(ReplayWindow::new(64).unwrap().size(), 64);
        assert_eq!(ReplayWindow::new(1000).unwrap().size(), 1024);
        let w = ReplayWindow::new(1024).unwrap();
        assert_eq!(w.blocks.len(), 32);
    }

    #[test]
    fn boringtun_like_sequence() {
        let mut w = ReplayWindow::new(1024).unwrap();
        let n = 1024;
        assert_eq!(w.accept(0), Err(ReplayError::TooOld));
        for s in [1, 63, 15, 64, 65] {
            assert_eq!(w.accept(s), Ok(()));
            assert_eq!(w.accept(s), Err(ReplayError::Duplicate));
        }
        for s in 66..n + 128 {
            assert_eq!(w.accept(s), Ok(()));
            assert_eq!(w.accept(s), Err(ReplayError::Duplicate));
        }
        assert_eq!(w.accept(n * 3), Ok(()));
        for s in 1..=n * 2 {
            assert_eq!(w.check(s), Err(ReplayError::TooOld));
        }
        for s in n * 2 + 1..n * 3 {
            assert_eq!(w.check(s), Ok(()));
        }
        for s in (n * 2 + 1..n * 3).rev() {
            assert_eq!(w.accept(s), Ok(()));
            assert_eq!(w.accept(s), Err(ReplayError::Duplicate));
        }
    }

    #[test]
    fn slide_by_less_than_a_block_keeps_bits() {
        let mut w = ReplayWindow::new(64).unwrap();
        for s in 1..=64 {
            w.accept(s).unwrap();
        }
        w.accept(70).unwrap();
        // 7..=70 is the window; 6 and below are too old.
        assert_eq!(w.check(6), Err(ReplayError::TooOld));
        for s in 7..=64 {
            assert_eq!(w.check(s), Err(ReplayError::Duplicate), "{s}");
        }
        for s in 65..70 {
            assert_eq!(w.check(s), Ok(()), "{s}");
        }
    }

    #[test]
    fn esn_inference_cases() {
        let mut w = ReplayWindow::new(1024).unwrap();
        // Empty window: Case B with Th = 0; the top of subspace -1 does not exist.
        assert_eq!(w.infer_esn(1), Some(1));
        assert_eq!(w.infer_esn(u32::MAX), None);
        // Case A, top = 2^32 + 5000.
        w.accept((1 << 32) + 5000).unwrap();
        assert_eq!(w.infer_esn(5000 - 1023), Some((1 << 32) + 5000 - 1023));
        assert_eq!(w.infer_esn(4000), Some((1 << 32) + 4000)); // inside the window
        assert_eq!(w.infer_esn(3000), Some((2 << 32) + 3000)); // left of it: next subspace
        assert_eq!(w.infer_esn(9000), Some((1 << 32) + 9000));
        // Case B, top = 2^32 + 10: the window reaches back into subspace 0.
        let mut w = ReplayWindow::new(1024).unwrap();
        w.accept((1 << 32) + 10).unwrap();
        assert_eq!(w.infer_esn(u32::MAX), Some(u64::from(u32::MAX)));
        assert_eq!(
            w.infer_esn(u32::MAX - 1012),
            Some(u64::from(u32::MAX - 1012))
        );
        assert_eq!(w.infer_esn(11), Some((1 << 32) + 11));
        assert_eq!(w.infer_esn(0), Some(1 << 32));
        // The very top: no subspace 2^32.
        let mut w = ReplayWindow::new(1024).unwrap();
        w.accept(u64::MAX - 10).unwrap();
        assert_eq!(w.infer_esn(0), None);
    }
}
