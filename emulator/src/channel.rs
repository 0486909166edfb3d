//! The logical channel table (ISO 7816-4 5.1.1, 11.1.2).
//!
//! Channel 0 (the basic channel) is open whenever the card is powered;
//! further channels are opened and closed by MANAGE CHANNEL. Each open
//! channel has its own selected applet, its own selection epoch (for
//! `CLEAR_ON_DESELECT` transient memory), a response waiting for GET
//! RESPONSE, and a command chain being assembled.

use zeroize::Zeroizing;

use crate::Status;

/// The most channels ISO 7816-4 can address (0..=19).
pub const MAX_CHANNELS: u8 = 20;

/// A response whose tail waits for GET RESPONSE (it may be a decrypted
/// secret or an ECDH result: zeroized when dropped).
#[derive(Debug)]
pub(crate) struct Pending {
    pub data: Zeroizing<Vec<u8>>,
    pub offset: usize,
    pub status: Status,
}

impl Pending {
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.offset)
    }
}

/// A command chain being assembled (ISO 7816-4 5.1.1.1).
#[derive(Debug)]
pub(crate) struct Chain {
    /// CLA (without the chaining bit), INS, P1, P2 of the first link; every
    /// link must repeat them.
    pub header: [u8; 4],
    /// The data so far (it may carry a PIN: zeroized when dropped).
    pub data: Zeroizing<Vec<u8>>,
}

/// One open channel.
#[derive(Debug, Default)]
pub(crate) struct Channel {
    /// Index of the selected applet in the card's applet list.
    pub selected: Option<usize>,
    /// Stamp of the current selection (unique for the card's lifetime).
    pub selection: u64,
    pub pending: Option<Pending>,
    pub chain: Option<Chain>,
}

/// The card's channels, indexed by channel number.
#[derive(Debug)]
pub(crate) struct ChannelTable {
    slots: Vec<Option<Channel>>,
}

impl ChannelTable {
    /// A table of `count` channels (1..=20), all closed.
    pub fn new(count: u8) -> Self {
        let count = count.clamp(1, MAX_CHANNELS);
        ChannelTable {
            slots: (0..count).map(|_| None).collect(),
        }
    }

    /// Closes every channel (power loss).
    pub fn close_all(&mut self) {
        for slot in &mut self.slots {
            *slot = None;
        }
    }

    pub fn capacity(&self) -> u8 {
        self.slots.len() as u8
    }

    pub fn get(&self, channel: u8) -> Option<&Channel> {
        self.slots.get(usize::from(channel))?.as_ref()
    }

    pub fn get_mut(&mut self, channel: u8) -> Option<&mut Channel> {
        self.slots.get_mut(usize::from(channel))?.as_mut()
    }

    /// Opens `channel` (closed before) with nothing selected.
    pub fn open(&mut self, channel: u8) -> Option<&mut Channel> {
        let slot = self.slots.get_mut(usize::from(channel))?;
        Some(slot.insert(Channel::default()))
    }

    /// Closes `channel`; returns what was in it.
    pub fn close(&mut self, channel: u8) -> Option<Channel> {
        self.slots.get_mut(usize::from(channel))?.take()
    }

    /// The lowest closed channel above 0.
    pub fn first_free(&self) -> Option<u8> {
        (1..self.capacity()).find(|&n| self.get(n).is_none())
    }

    /// True when `applet` is selected on a channel other than `except`.
    pub fn selected_elsewhere(&self, applet: usize, except: u8) -> bool {
        self.slots.iter().enumerate().any(|(n, slot)| {
            n != usize::from(except) && slot.as_ref().is_some_and(|c| c.selected == Some(applet))
        })
    }
}
