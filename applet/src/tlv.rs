//! A small BER-TLV reader and writer (ISO 7816-4 5.2, SP 800-73-4 Part 2 3).
//!
//! Contract: [`Reader`] walks a byte string one data object at a time with a
//! cursor and never panics; a tag of up to 3 bytes and a definite length of
//! up to `83 xx xx xx` are accepted, anything else is a [`TlvError`], which
//! the applet answers with `6A80`. [`Writer`] emits the shortest definite
//! length and nests constructed objects without hand-computed lengths.

use vscard_emulator::Status;

/// Why bytes are not well-formed BER-TLV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    /// The data ended inside a tag, a length or a value.
    #[error("truncated data object")]
    Truncated,
    /// A tag longer than 3 bytes.
    #[error("tag longer than 3 bytes")]
    TagTooLong,
    /// An indefinite length or a length field longer than 3 bytes.
    #[error("unsupported length encoding {0:#04x}")]
    Length(u8),
    /// A data object other than the one expected.
    #[error("expected tag {expected:#x}, found {found:#x}")]
    UnexpectedTag {
        /// The tag the caller asked for.
        expected: u32,
        /// The tag present.
        found: u32,
    },
    /// Bytes left after the last expected data object.
    #[error("{0} bytes after the last data object")]
    TrailingData(usize),
}

impl From<TlvError> for Status {
    fn from(_: TlvError) -> Status {
        Status::IncorrectData
    }
}

/// One data object: its tag and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag, its bytes big-endian (`5F C1 05` is `0x5FC105`).
    pub tag: u32,
    /// The value bytes.
    pub value: &'a [u8],
}

/// A cursor over concatenated BER-TLV data objects.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    /// True when every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// Takes `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], TlvError> {
        if n > self.rest.len() {
            return Err(TlvError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, TlvError> {
        let (&first, tail) = self.rest.split_first().ok_or(TlvError::Truncated)?;
        self.rest = tail;
        Ok(first)
    }

    fn tag(&mut self) -> Result<u32, TlvError> {
        let first = self.byte()?;
        let mut tag = u32::from(first);
        if first & 0x1F != 0x1F {
            return Ok(tag);
        }
        for _ in 0..2 {
            let next = self.byte()?;
            tag = (tag << 8) | u32::from(next);
            if next & 0x80 == 0 {
                return Ok(tag);
            }
        }
        Err(TlvError::TagTooLong)
    }

    fn length(&mut self) -> Result<usize, TlvError> {
        let first = self.byte()?;
        let count = match first {
            0x00..=0x7F => return Ok(usize::from(first)),
            0x81..=0x83 => first & 0x0F,
            other => return Err(TlvError::Length(other)),
        };
        let mut length = 0usize;
        for _ in 0..count {
            length = (length << 8) | usize::from(self.byte()?);
        }
        Ok(length)
    }

    /// Reads the next object's tag and declared value length, leaving the
    /// value unread: for an object that arrives in pieces (GET RESPONSE).
    pub fn header(&mut self) -> Result<(u32, usize), TlvError> {
        Ok((self.tag()?, self.length()?))
    }

    /// Reads the next data object.
    pub fn read(&mut self) -> Result<Tlv<'a>, TlvError> {
        let (tag, length) = self.header()?;
        let value = self.take(length)?;
        Ok(Tlv { tag, value })
    }

    /// Reads the next data object and checks its tag.
    pub fn expect(&mut self, tag: u32) -> Result<&'a [u8], TlvError> {
        let object = self.read()?;
        if object.tag != tag {
            return Err(TlvError::UnexpectedTag {
                expected: tag,
                found: object.tag,
            });
        }
        Ok(object.value)
    }

    /// Fails unless every byte was consumed.
    pub fn expect_empty(&self) -> Result<(), TlvError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(TlvError::TrailingData(n)),
        }
    }

    /// Reads every remaining data object.
    pub fn read_all(mut self) -> Result<Vec<Tlv<'a>>, TlvError> {
        let mut objects = Vec::new();
        while !self.is_empty() {
            objects.push(self.read()?);
        }
        Ok(objects)
    }
}

/// Reads `data` as exactly one data object with tag `tag` and returns its
/// value.
pub fn single(data: &[u8], tag: u32) -> Result<&[u8], TlvError> {
    let mut reader = Reader::new(data);
    let value = reader.expect(tag)?;
    reader.expect_empty()?;
    Ok(value)
}

/// Builds BER-TLV data objects.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a primitive data object.
    pub fn put(&mut self, tag: u32, value: &[u8]) -> &mut Self {
        write_tag(&mut self.out, tag);
        write_length(&mut self.out, value.len());
        self.out.extend_from_slice(value);
        self
    }

    /// Appends a constructed data object whose value `build` writes.
    pub fn nest(&mut self, tag: u32, build: impl FnOnce(&mut Writer)) -> &mut Self {
        let mut inner = Writer::new();
        build(&mut inner);
        self.put(tag, &inner.out)
    }

    /// Appends raw bytes (already encoded data objects).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// The encoded bytes.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

/// One primitive data object, encoded.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    Writer::new().put(tag, value).finish()
}

fn write_tag(out: &mut Vec<u8>, tag: u32) {
    let bytes = tag.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|&&b| b == 0).count();
    out.extend(bytes.iter().skip(skip));
}

fn write_length(out: &mut Vec<u8>, length: usize) {
    match length {
        0..=0x7F => out.push(length as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, length as u8]),
        0x100..=0xFFFF => {
            out.push(0x82);
            out.extend_from_slice(&(length as u16).to_be_bytes());
        }
        _ => {
            out.push(0x83);
            let bytes = (length as u32).to_be_bytes();
            out.extend(bytes.iter().skip(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_multi_byte_tags_and_long_lengths() {
        let mut data = vec![0x5F, 0xC1, 0x05, 0x82, 0x01, 0x00];
        data.extend(std::iter::repeat_n(0xAB, 256));
        data.extend_from_slice(&[0x7E, 0x00]);
        let mut reader = Reader::new(&data);
        let first = reader.read().unwrap();
        assert_eq!(first.tag, 0x5FC105);
        assert_eq!(first.value.len(), 256);
        assert_eq!(reader.expect(0x7E).unwrap(), &[] as &[u8]);
        reader.expect_empty().unwrap();
    }

    #[test]
    fn refuses_malformed_input() {
        assert_eq!(Reader::new(&[0x53]).read(), Err(TlvError::Truncated));
        assert_eq!(
            Reader::new(&[0x53, 0x80]).read(),
            Err(TlvError::Length(0x80))
        );
        assert_eq!(
            Reader::new(&[0x53, 0x02, 0x01]).read(),
            Err(TlvError::Truncated)
        );
        assert_eq!(
            Reader::new(&[0x5F, 0xC1, 0x85, 0x01, 0x00]).read(),
            Err(TlvError::TagTooLong)
        );
        assert_eq!(
            single(&[0x53, 0x00, 0x00], 0x53),
            Err(TlvError::TrailingData(1))
        );
    }

    #[test]
    fn writer_nests_and_uses_shortest_lengths() {
        let encoded = Writer::new()
            .nest(0x7C, |w| {
                w.put(0x82, &[]).put(0x81, &[1, 2]);
            })
            .finish();
        assert_eq!(encoded, [0x7C, 0x06, 0x82, 0x00, 0x81, 0x02, 1, 2]);
        assert_eq!(encode(0x7F49, &[0; 200])[..4], [0x7F, 0x49, 0x81, 200]);
        assert_eq!(encode(0x53, &[0; 300])[..4], [0x53, 0x82, 0x01, 0x2C]);
    }

    proptest! {
        #[test]
        fn reader_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Reader::new(&data).read_all();
        }

        #[test]
        fn encode_then_read_round_trips(
            tag in prop_oneof![Just(0x53u32), Just(0x7Cu32), Just(0x5FC105u32), Just(0x7F49u32)],
            value in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let encoded = encode(tag, &value);
            prop_assert_eq!(single(&encoded, tag).unwrap(), &value[..]);
        }
    }
}
