//! Shared pieces of the vscard fuzz targets: a byte cursor over the
//! fuzzer's input. The targets read their input with it in small, documented
//! formats (fuzz/README.md) rather than with `arbitrary`, so that seed
//! inputs can be written by hand (fuzz/corpus/*/) and stay readable.

#![forbid(unsafe_code)]

/// A read position in the fuzzer's input; reading past the end gives
/// zeros and empty slices, so every input is a valid program.
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Input<'a> {
        Input { bytes }
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((first, rest)) => {
                self.bytes = rest;
                *first
            }
            None => 0,
        }
    }

    /// The next big-endian u16 (missing bytes read as 0).
    pub fn u16_be(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// The next `n` bytes, or all that remain when fewer do.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.bytes.len());
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        head
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.bytes.len())
    }
}
