//! The runtime's half of every exchange (ISO 7816-4 5.1 and 7.1): routing
//! by channel, command chaining, GET RESPONSE and 61xx / 6Cxx, before and
//! after the applet sees a command.
//!
//! - The commands the runtime answers itself (GET RESPONSE, MANAGE
//!   CHANNEL, SELECT by DF name, in an interindustry class) are recognised
//!   in one place, [`RuntimeCommand::of`]; everything else goes to the
//!   applet selected on the command's channel (`6A82` when none is).
//! - Chaining (CLA bit `10`): each link is answered `9000`; the runtime
//!   keeps the data and hands the applet one command when the last link
//!   (bit clear) arrives. Every link must repeat CLA, INS, P1 and P2; a
//!   different command in the middle of a chain ends it with `6883`. More
//!   than the card's maximum command data ends it with `6700`.
//! - A command without Le (case 1 or 3) is answered as if Le were `00`
//!   (`0000` for an extended command): the card only speaks T=1, where a
//!   card returns the data it has (Java Card's `setOutgoing` rule), and
//!   middleware such as yubico-piv-tool sends SELECT without Le and wants
//!   the answer with `9000`.
//! - Responses longer than Ne: the first Ne bytes go out with `61xx`
//!   (`xx` = bytes left, `00` for 256 or more); GET RESPONSE (`00 C0 00
//!   00 Le`) hands out the rest. An explicit short Le larger than what is
//!   left is answered `6Cxx` with the exact count (ISO 7816-3 T=0 rule,
//!   which PC/SC middleware honours under T=1 too); any other command on
//!   the channel discards what was left. GET RESPONSE with nothing pending
//!   answers `6985`.

use zeroize::Zeroizing;

use crate::apdu::{EXTENDED_NE_MAX, SHORT_NE_MAX};
use crate::channel::{Chain, Pending};
use crate::{Card, CommandApdu, Response, ResponseApdu, SecureMessaging, Status};

/// INS of GET RESPONSE.
const INS_GET_RESPONSE: u8 = 0xC0;
/// INS of MANAGE CHANNEL.
const INS_MANAGE_CHANNEL: u8 = 0x70;
/// INS of SELECT.
const INS_SELECT: u8 = 0xA4;
/// P1 of SELECT by DF name.
const SELECT_BY_NAME: u8 = 0x04;

/// A command the runtime answers itself instead of an applet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RuntimeCommand {
    /// GET RESPONSE (ISO 7816-4 11.5.3).
    GetResponse,
    /// MANAGE CHANNEL (ISO 7816-4 11.1.2).
    ManageChannel,
    /// SELECT by DF name (ISO 7816-4 11.1.1, P1 = `04`); other SELECTs go
    /// to the applet.
    SelectByName,
}

impl RuntimeCommand {
    /// The runtime command `command` is, if any: only interindustry
    /// classes carry them (a proprietary class's INS means what its applet
    /// says).
    fn of(command: &CommandApdu<'_>) -> Option<RuntimeCommand> {
        if command.class.is_proprietary() {
            return None;
        }
        match (command.ins, command.p1) {
            (INS_GET_RESPONSE, _) => Some(RuntimeCommand::GetResponse),
            (INS_MANAGE_CHANNEL, _) => Some(RuntimeCommand::ManageChannel),
            (INS_SELECT, SELECT_BY_NAME) => Some(RuntimeCommand::SelectByName),
            _ => None,
        }
    }
}

/// A response APDU without data.
pub(crate) fn status_only(status: Status) -> ResponseApdu {
    ResponseApdu {
        data: Vec::new(),
        status,
    }
}

/// What a chained link led to.
enum ChainStep {
    /// More links expected; answer `9000`.
    Continue,
    /// The chain is complete: the whole data field.
    Complete(Zeroizing<Vec<u8>>),
}

impl Card {
    /// Handles one command; returns the response, the channel and (when
    /// `describe`) a description for the trace.
    pub(crate) fn exchange(
        &mut self,
        bytes: &[u8],
        describe: bool,
    ) -> (ResponseApdu, u8, Option<String>) {
        let command = match CommandApdu::parse(bytes) {
            Ok(command) => command,
            Err(status) => {
                let name = describe.then(|| "malformed APDU".to_owned());
                return (status_only(status), 0, name);
            }
        };
        let channel = command.class.channel();
        let mut name = describe.then(|| self.describe(&command));
        if let Some(name) = &name {
            tracing::debug!(
                target: "vscard::apdu",
                direction = "in",
                channel,
                command = %name,
                length = bytes.len(),
            );
        }
        let response = self.route(&command, &mut name);
        (response, channel, name)
    }

    fn route(&mut self, command: &CommandApdu<'_>, name: &mut Option<String>) -> ResponseApdu {
        let channel_number = command.class.channel();
        let Some(channel) = self.channels.get_mut(channel_number) else {
            return status_only(Status::LogicalChannelNotSupported);
        };
        if command.class.secure_messaging() != SecureMessaging::None {
            return status_only(Status::SecureMessagingNotSupported);
        }
        let runtime_command = RuntimeCommand::of(command);
        if runtime_command == Some(RuntimeCommand::GetResponse) {
            return get_response(&mut channel.pending, command);
        }
        channel.pending = None;

        if command.class.is_chained() || channel.chain.is_some() {
            let max = self.max_command_data;
            match link_chain(&mut channel.chain, command, max) {
                Err(status) => return status_only(status),
                Ok(ChainStep::Continue) => {
                    if let Some(name) = name {
                        name.push_str(" (chained part)");
                    }
                    return status_only(Status::Success);
                }
                Ok(ChainStep::Complete(data)) => {
                    let whole = CommandApdu {
                        class: command.class.without_chaining(),
                        data: &data,
                        ..*command
                    };
                    return self.dispatch_and_deliver(&whole, RuntimeCommand::of(&whole));
                }
            }
        }
        if command.data.len() > self.max_command_data {
            return status_only(Status::WrongLength);
        }
        self.dispatch_and_deliver(command, runtime_command)
    }

    fn dispatch_and_deliver(
        &mut self,
        command: &CommandApdu<'_>,
        runtime_command: Option<RuntimeCommand>,
    ) -> ResponseApdu {
        let channel = command.class.channel();
        self.env.touch.requested = false;
        let result = self.dispatch(command, runtime_command);
        if std::mem::take(&mut self.env.touch.requested) {
            self.env.touch.held = Some(crate::touch::HeldCommand::of(command));
        }
        let (data, status) = match result {
            Ok(response) => (response.data, response.status),
            Err(status) => (Vec::new(), status),
        };
        let ne = match (command.ne, command.extended) {
            (0, false) => SHORT_NE_MAX,
            (0, true) => EXTENDED_NE_MAX,
            (ne, _) => ne,
        };
        if data.len() <= ne {
            return ResponseApdu { data, status };
        }
        // The first Ne bytes now, the rest through GET RESPONSE.
        let first = data[..ne].to_vec();
        let pending = Pending {
            data: Zeroizing::new(data),
            offset: ne,
            status,
        };
        let left = Status::bytes_remaining(pending.remaining());
        if let Some(channel) = self.channels.get_mut(channel) {
            channel.pending = Some(pending);
        }
        ResponseApdu {
            data: first,
            status: left,
        }
    }

    /// Runs a complete command again (a command that waited for a touch,
    /// [`Card::touch`]): as the last part of its exchange did.
    pub(crate) fn rerun(&mut self, command: &CommandApdu<'_>) -> ResponseApdu {
        if let Some(channel) = self.channels.get_mut(command.class.channel()) {
            channel.pending = None;
        }
        self.dispatch_and_deliver(command, RuntimeCommand::of(command))
    }

    fn dispatch(
        &mut self,
        command: &CommandApdu<'_>,
        runtime_command: Option<RuntimeCommand>,
    ) -> Result<Response, Status> {
        match runtime_command {
            Some(RuntimeCommand::ManageChannel) => return self.manage_channel(command),
            Some(RuntimeCommand::SelectByName) => return self.select_by_name(command),
            // Answered by `route` before chaining, so never seen here; if it
            // were, there would be nothing pending to hand out.
            Some(RuntimeCommand::GetResponse) => return Err(Status::ConditionsNotSatisfied),
            None => {}
        }
        let channel = command.class.channel();
        let Some(index) = self.channels.get(channel).and_then(|c| c.selected) else {
            return Err(Status::NotFound);
        };
        self.run_applet(index, channel, |applet, ctx| applet.process(ctx, command))
    }

    pub(crate) fn describe(&self, command: &CommandApdu<'_>) -> String {
        match RuntimeCommand::of(command) {
            Some(RuntimeCommand::GetResponse) => return "GET RESPONSE".into(),
            Some(RuntimeCommand::ManageChannel) => {
                return match command.p1 {
                    0x00 => "MANAGE CHANNEL OPEN".into(),
                    _ => "MANAGE CHANNEL CLOSE".into(),
                };
            }
            Some(RuntimeCommand::SelectByName) => {
                let target = self
                    .find_by_name(command.data, 0x00, None)
                    .and_then(|i| self.slots.get(i))
                    .map(|slot| slot.applet.name().to_owned())
                    .unwrap_or_else(|| hex::encode_upper(command.data));
                return format!("SELECT {target}");
            }
            None => {}
        }
        let described = self
            .channels
            .get(command.class.channel())
            .and_then(|c| c.selected)
            .and_then(|i| self.slots.get(i))
            .and_then(|slot| slot.applet.describe(command));
        described.unwrap_or_else(|| {
            format!(
                "{:02X} {:02X} {:02X} {:02X}",
                command.class.raw(),
                command.ins,
                command.p1,
                command.p2
            )
        })
    }
}

/// GET RESPONSE against the channel's pending response.
fn get_response(slot: &mut Option<Pending>, command: &CommandApdu<'_>) -> ResponseApdu {
    if command.p1 != 0 || command.p2 != 0 {
        return status_only(Status::IncorrectP1P2);
    }
    let Some(pending) = slot.as_mut() else {
        return status_only(Status::ConditionsNotSatisfied);
    };
    let left = pending.remaining();
    // Le absent asks for "as much as fits a short response".
    let ne = if command.ne == 0 {
        SHORT_NE_MAX
    } else {
        command.ne
    };
    let explicit_short = !command.extended && command.ne > 0 && command.ne < SHORT_NE_MAX;
    if explicit_short && ne > left {
        return status_only(Status::WrongLe(left.min(255) as u8));
    }
    let n = ne.min(left);
    let start = pending.offset;
    let data = pending.data[start..start + n].to_vec();
    pending.offset += n;
    let status = if pending.remaining() == 0 {
        let status = pending.status;
        *slot = None;
        status
    } else {
        Status::bytes_remaining(pending.remaining())
    };
    ResponseApdu { data, status }
}

/// Adds one link to the channel's chain.
fn link_chain(
    chain: &mut Option<Chain>,
    command: &CommandApdu<'_>,
    max: usize,
) -> Result<ChainStep, Status> {
    let header = [
        command.class.without_chaining().raw(),
        command.ins,
        command.p1,
        command.p2,
    ];
    let current = chain.get_or_insert_with(|| Chain {
        header,
        data: Zeroizing::new(Vec::new()),
    });
    if current.header != header {
        *chain = None;
        return Err(Status::LastCommandOfChainExpected);
    }
    if current.data.len() + command.data.len() > max {
        *chain = None;
        return Err(Status::WrongLength);
    }
    current.data.extend_from_slice(command.data);
    if command.class.is_chained() {
        return Ok(ChainStep::Continue);
    }
    let data = chain.take().map(|c| c.data).unwrap_or_default();
    Ok(ChainStep::Complete(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(cla: u8, ins: u8, p1: u8) -> Option<RuntimeCommand> {
        let bytes = [cla, ins, p1, 0x00];
        RuntimeCommand::of(&CommandApdu::parse(&bytes).unwrap())
    }

    #[test]
    fn the_runtime_commands_are_recognised_in_interindustry_classes_only() {
        assert_eq!(of(0x00, 0xC0, 0x00), Some(RuntimeCommand::GetResponse));
        assert_eq!(of(0x01, 0x70, 0x80), Some(RuntimeCommand::ManageChannel));
        assert_eq!(of(0x43, 0xA4, 0x04), Some(RuntimeCommand::SelectByName));
        // SELECT by file identifier or path is the applet's.
        assert_eq!(of(0x00, 0xA4, 0x00), None);
        // A proprietary class's INS means what its applet says.
        assert_eq!(of(0x80, 0xC0, 0x00), None);
        assert_eq!(of(0x80, 0xA4, 0x04), None);
        assert_eq!(of(0x00, 0xCB, 0x3F), None);
    }
}
