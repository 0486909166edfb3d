//! Applet selection and logical channel management.
//!
//! SELECT by DF name (ISO 7816-4 11.1.1, P1 = `04`):
//! - the data is the AID or a right-truncated prefix of it (see
//!   [`crate::Aid::matches`]) at least [`crate::Applet::min_select_len`]
//!   bytes long (the RID, 5 bytes, by default); empty data selects the
//!   default applet;
//! - P2 `b2 b1` picks the first (`00`), last (`01`), next (`10`) or
//!   previous (`11`) matching applet, relative to the applet selected on
//!   the channel; the occurrences are the applet whose AID equals the data
//!   (an exact match is always the first occurrence, whatever the
//!   installation order), then the right-truncated matches in installation
//!   order;
//! - P2 `b4 b3 = 11` asks for no response data, other values are passed to
//!   the applet, which answers with its FCI or whatever its specification
//!   says;
//! - no match: `6A82`, and the channel keeps its selection and the applet
//!   its security state;
//! - a match that is selected on another channel and is not
//!   multi-selectable: `6985`, nothing changes;
//! - otherwise the current applet is deselected and the new one selected;
//!   if it refuses (Java Card semantics) the channel has nothing selected.
//!
//! MANAGE CHANNEL (ISO 7816-4 11.1.2): P1 `00` opens a channel (P2 `00`:
//! the card picks the lowest free one and returns its number; P2 `n`: the
//! host picks `n`); P1 `80` closes channel P2 (or the command's own channel
//! for P2 `00`). A channel opened from the basic channel gets the default
//! applet; one opened from channel `n` gets `n`'s applet, which must then be
//! multi-selectable (`6985` otherwise). The basic channel cannot be closed
//! (`6A86`); a channel that is not open answers `6881`.

use crate::{Card, CommandApdu, Response, Status};

impl Card {
    /// The applet a SELECT by name with this data and P2 picks.
    pub(crate) fn find_by_name(
        &self,
        name: &[u8],
        p2: u8,
        current: Option<usize>,
    ) -> Option<usize> {
        if name.is_empty() {
            return self.default_applet;
        }
        let order = self.matches_of(name);
        let position = current.and_then(|c| order.iter().position(|&i| i == c));
        match (p2 & 0x03, current, position) {
            (0x00, _, _) => order.first().copied(),
            (0x01, _, _) => order.last().copied(),
            (0x02, _, Some(p)) => order.get(p + 1).copied(),
            // The current applet does not match the name: the next one in
            // installation order after it.
            (0x02, Some(c), None) => order.iter().copied().find(|&i| i > c),
            (0x02, None, _) => order.first().copied(),
            (_, _, Some(p)) => p.checked_sub(1).and_then(|p| order.get(p)).copied(),
            (_, Some(c), None) => order.iter().rev().copied().find(|&i| i < c),
            (_, None, _) => order.last().copied(),
        }
    }

    /// The applets `name` selects, in occurrence order: the one whose AID
    /// equals `name` first (an exact match wins over a right-truncated one
    /// whatever the installation order), then those of which it is a
    /// right-truncated prefix at least as long as the applet's
    /// [`crate::Applet::min_select_len`], in installation order.
    fn matches_of(&self, name: &[u8]) -> Vec<usize> {
        let exact = self.slots.iter().position(|s| s.aid.as_bytes() == name);
        let partial = self.slots.iter().enumerate().filter(|&(i, slot)| {
            Some(i) != exact && slot.aid.matches(name) && name.len() >= slot.applet.min_select_len()
        });
        exact.into_iter().chain(partial.map(|(i, _)| i)).collect()
    }

    pub(crate) fn select_by_name(&mut self, command: &CommandApdu<'_>) -> Result<Response, Status> {
        if command.p2 & 0xF0 != 0 {
            return Err(Status::IncorrectP1P2);
        }
        let channel = command.class.channel();
        let current = self.channels.get(channel).and_then(|c| c.selected);
        let target = self
            .find_by_name(command.data, command.p2, current)
            .ok_or(Status::NotFound)?;
        if self.conflicts(target, channel) {
            return Err(Status::ConditionsNotSatisfied);
        }
        if let Some(old) = current {
            self.deselect(channel, old);
        }
        let mut response = self.select_on(channel, target, Some(command))?;
        if command.p2 & 0x0C == 0x0C {
            response.data.clear();
        }
        Ok(response)
    }

    /// Selects the applet at `index` on `channel` without a SELECT command.
    pub(crate) fn select_implicitly(&mut self, channel: u8, index: usize) -> Result<(), Status> {
        if self.conflicts(index, channel) {
            return Err(Status::ConditionsNotSatisfied);
        }
        self.select_on(channel, index, None).map(|_| ())
    }

    /// True when selecting `index` on `channel` would select a
    /// non-multi-selectable applet twice.
    fn conflicts(&self, index: usize, channel: u8) -> bool {
        let multi = self
            .slots
            .get(index)
            .is_some_and(|slot| slot.applet.multi_selectable());
        !multi && self.channels.selected_elsewhere(index, channel)
    }

    fn select_on(
        &mut self,
        channel: u8,
        index: usize,
        command: Option<&CommandApdu<'_>>,
    ) -> Result<Response, Status> {
        let stamp = self.env.next_stamp();
        if let Some(c) = self.channels.get_mut(channel) {
            c.selected = None;
            c.selection = stamp;
        }
        let response =
            self.run_applet(index, channel, |applet, ctx| applet.select(ctx, command))?;
        if let Some(c) = self.channels.get_mut(channel) {
            c.selected = Some(index);
        }
        Ok(response)
    }

    fn deselect(&mut self, channel: u8, index: usize) {
        let _ = self.run_applet(index, channel, |applet, ctx| {
            applet.deselect(ctx);
            Ok(Response::empty())
        });
        if let Some(c) = self.channels.get_mut(channel) {
            c.selected = None;
        }
    }

    pub(crate) fn manage_channel(&mut self, command: &CommandApdu<'_>) -> Result<Response, Status> {
        if !command.data.is_empty() {
            return Err(Status::WrongLength);
        }
        match command.p1 {
            0x00 => self.open_channel(command.class.channel(), command.p2),
            0x80 => self.close_channel(command.class.channel(), command.p2),
            _ => Err(Status::IncorrectP1P2),
        }
    }

    fn open_channel(&mut self, origin: u8, requested: u8) -> Result<Response, Status> {
        let target = if requested == 0 {
            self.channels
                .first_free()
                .ok_or(Status::FunctionNotSupported)?
        } else if requested >= self.channels.capacity() {
            return Err(Status::LogicalChannelNotSupported);
        } else if self.channels.get(requested).is_some() {
            return Err(Status::ConditionsNotSatisfied);
        } else {
            requested
        };
        let inherit = if origin == 0 {
            self.default_applet
        } else {
            let selected = self.channels.get(origin).and_then(|c| c.selected);
            if let Some(index) = selected
                && self.conflicts(index, target)
            {
                return Err(Status::ConditionsNotSatisfied);
            }
            selected
        };
        let stamp = self.env.next_stamp();
        if let Some(channel) = self.channels.open(target) {
            channel.selection = stamp;
        }
        if let Some(index) = inherit {
            // From the basic channel the default applet is selected if it
            // can be; a channel with nothing selected is still open.
            let _ = self.select_implicitly(target, index);
        }
        Ok(if requested == 0 {
            Response::ok(vec![target])
        } else {
            Response::empty()
        })
    }

    fn close_channel(&mut self, origin: u8, requested: u8) -> Result<Response, Status> {
        let target = if requested == 0 { origin } else { requested };
        if target == 0 {
            return Err(Status::IncorrectP1P2);
        }
        let selected = self
            .channels
            .get(target)
            .ok_or(Status::LogicalChannelNotSupported)?
            .selected;
        if let Some(index) = selected {
            self.deselect(target, index);
        }
        self.channels.close(target);
        Ok(Response::empty())
    }
}
