//! Which APDUs of a session are "a signature" for a card whose holder
//! approves each one (`approval = signature`).
//!
//! A signature is a GENERAL AUTHENTICATE (`INS 87`) to key reference
//! `9C`, the digital signature key (SP 800-73-4 Part 1 3.2.2 and Part 2
//! 3.2.4), whatever its algorithm and template: the holder's approval
//! is for the use of that key, not for one mechanism. Every other
//! command passes unasked, GENERAL AUTHENTICATE to the other keys
//! (`9A` authentication, `9D` key management, `9E` card authentication,
//! the retired keys, the management key) included.
//!
//! A command sent in parts (command chaining, ISO 7816-4 5.3.3) is one
//! command: it is asked for once, on its first part, and the decision
//! holds for the parts that follow with the same header until the last
//! part (chaining bit clear) ends it. Any other APDU (on any channel), or
//! a power or reset frame, ends the chain here (the card ends a chain
//! with `6883` when another command comes on its channel); a part that
//! then comes is a new command and is asked for again: asking more often
//! than the card would need is the safe side. The card computes a
//! signature only on a chain's last part, and a decision ends at the
//! first last part, so one approval gives at most one signature.
//!
//! The approval guards the key, not the slot number: Yubico's MOVE KEY
//! (`INS F6`, P2 the source, P1 the destination) would take the 9C key to
//! a retired slot, where GENERAL AUTHENTICATE signs with it unasked. On a
//! card that asks per signature a move out of 9C is refused (`6982`, the
//! card never sees it); deleting the 9C key (P1 `FF`) and moving another
//! key into 9C pass (neither lets the 9C key sign unasked).

use vscard_emulator::CommandApdu;
use vscard_link::Frame;

/// `INS` of GENERAL AUTHENTICATE (SP 800-73-4 Part 2 3.2.4).
const GENERAL_AUTHENTICATE: u8 = 0x87;

/// The PIV digital signature key's reference (SP 800-73-4 Part 1 3.2.2).
const DIGITAL_SIGNATURE_KEY: u8 = 0x9C;

/// `INS` of Yubico's MOVE KEY (P2 the source slot, P1 the destination).
const MOVE_KEY: u8 = 0xF6;

/// P1 of MOVE KEY that deletes the source's key instead.
const DELETE_KEY: u8 = 0xFF;

/// What a session does with one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// To the card.
    Pass,
    /// A new signature: ask the holder, then tell [`SignatureGate::decided`].
    Ask,
    /// A later part of a chain the holder refused: answered `6982`.
    Refuse,
}

/// A command header (the class without its chaining bit, `INS`, `P1`,
/// `P2`): the parts of one chained command share it.
type Header = (u8, u8, u8, u8);

/// The decision for the chained signature in progress, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chain {
    /// No chained signature in progress.
    None,
    /// Asked on this first part (chaining bit set); not decided yet.
    Asking(Header, bool),
    /// Later parts with this header follow the decision.
    Decided(Header, bool),
}

/// Follows a session's frames and says which ones need the holder.
#[derive(Debug)]
pub(crate) struct SignatureGate {
    enabled: bool,
    chain: Chain,
}

impl SignatureGate {
    /// A gate for a card that asks per signature (`enabled`), or one that
    /// lets everything pass.
    pub(crate) fn new(enabled: bool) -> SignatureGate {
        SignatureGate {
            enabled,
            chain: Chain::None,
        }
    }

    /// The step for `frame`, from the relay.
    pub(crate) fn step(&mut self, frame: &Frame) -> Step {
        if !self.enabled {
            return Step::Pass;
        }
        let apdu = match frame {
            Frame::Apdu(bytes) => bytes,
            Frame::PowerOn | Frame::PowerOff | Frame::Reset => {
                self.chain = Chain::None;
                return Step::Pass;
            }
            _ => return Step::Pass,
        };
        // The card parses with the same parser: what fails here never
        // reaches an applet there.
        let Ok(command) = CommandApdu::parse(apdu) else {
            self.chain = Chain::None;
            return Step::Pass;
        };
        let header = (
            command.class.without_chaining().raw(),
            command.ins,
            command.p1,
            command.p2,
        );
        let more = command.class.is_chained();
        if let Chain::Decided(chain, approved) = self.chain
            && chain == header
        {
            if !more {
                self.chain = Chain::None;
            }
            return if approved { Step::Pass } else { Step::Refuse };
        }
        self.chain = Chain::None;
        if command.ins == MOVE_KEY
            && command.p2 == DIGITAL_SIGNATURE_KEY
            && command.p1 != DELETE_KEY
        {
            // Every part of it, chained or not: the card would move the
            // key on the last.
            return Step::Refuse;
        }
        if command.ins != GENERAL_AUTHENTICATE || command.p2 != DIGITAL_SIGNATURE_KEY {
            return Step::Pass;
        }
        self.chain = Chain::Asking(header, more);
        Step::Ask
    }

    /// The holder's decision on the frame [`SignatureGate::step`] last
    /// said [`Step::Ask`] for.
    pub(crate) fn decided(&mut self, approved: bool) {
        self.chain = match self.chain {
            Chain::Asking(header, true) => Chain::Decided(header, approved),
            _ => Chain::None,
        };
    }
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;

    fn apdu(bytes: &[u8]) -> Frame {
        Frame::Apdu(Zeroizing::new(bytes.to_vec()))
    }

    const SIGN: [u8; 9] = [0x00, 0x87, 0x11, 0x9C, 0x04, 0x7C, 0x02, 0x82, 0x00];
    const SIGN_FIRST_PART: [u8; 9] = [0x10, 0x87, 0x11, 0x9C, 0x04, 0x7C, 0x02, 0x82, 0x00];
    const VERIFY: [u8; 4] = [0x00, 0x20, 0x00, 0x80];

    #[test]
    fn only_general_authenticate_to_9c_is_a_signature() {
        let mut gate = SignatureGate::new(true);
        assert_eq!(gate.step(&apdu(&SIGN)), Step::Ask);
        gate.decided(true);
        // Each one is asked again.
        assert_eq!(gate.step(&apdu(&SIGN)), Step::Ask);
        gate.decided(false);
        assert_eq!(gate.step(&apdu(&SIGN)), Step::Ask);
        for other_key in [0x9A, 0x9D, 0x9E, 0x82, 0x9B] {
            let mut command = SIGN;
            command[3] = other_key;
            assert_eq!(gate.step(&apdu(&command)), Step::Pass, "{other_key:02X}");
        }
        assert_eq!(gate.step(&apdu(&VERIFY)), Step::Pass);
        assert_eq!(gate.step(&Frame::GetAtr), Step::Pass);
        // Too short to be a command: the card answers it.
        assert_eq!(gate.step(&apdu(&[0x00, 0x87, 0x11])), Step::Pass);
    }

    #[test]
    fn the_signature_key_cannot_be_moved_out_of_9c() {
        let mut gate = SignatureGate::new(true);
        for cla in [0x00, 0x10, 0x01] {
            for to in [0x82, 0x95, 0x9A, 0x9D] {
                let out_of_9c = [cla, 0xF6, to, 0x9C];
                assert_eq!(
                    gate.step(&apdu(&out_of_9c)),
                    Step::Refuse,
                    "{out_of_9c:02X?}"
                );
            }
        }
        // Deleting it, or moving another key in, lets nothing sign unasked.
        assert_eq!(gate.step(&apdu(&[0x00, 0xF6, 0xFF, 0x9C])), Step::Pass);
        assert_eq!(gate.step(&apdu(&[0x00, 0xF6, 0x9C, 0x82])), Step::Pass);
        assert_eq!(gate.step(&apdu(&[0x00, 0xF6, 0x9A, 0x82])), Step::Pass);
        // Without per-signature approval the card decides.
        let mut open = SignatureGate::new(false);
        assert_eq!(open.step(&apdu(&[0x00, 0xF6, 0x82, 0x9C])), Step::Pass);
    }

    #[test]
    fn a_chained_signature_is_asked_for_once_on_its_first_part() {
        let mut gate = SignatureGate::new(true);
        assert_eq!(gate.step(&apdu(&SIGN_FIRST_PART)), Step::Ask);
        gate.decided(true);
        assert_eq!(gate.step(&apdu(&SIGN_FIRST_PART)), Step::Pass);
        assert_eq!(gate.step(&apdu(&SIGN)), Step::Pass);
        // The chain ended with its last part: the next one is new.
        assert_eq!(gate.step(&apdu(&SIGN)), Step::Ask);
        gate.decided(true);

        // Refused: its later parts are refused unasked.
        assert_eq!(gate.step(&apdu(&SIGN_FIRST_PART)), Step::Ask);
        gate.decided(false);
        assert_eq!(gate.step(&apdu(&SIGN_FIRST_PART)), Step::Refuse);
        assert_eq!(gate.step(&apdu(&SIGN)), Step::Refuse);
        assert_eq!(gate.step(&apdu(&SIGN)), Step::Ask);
    }

    #[test]
    fn anything_else_between_the_parts_ends_the_chain() {
        let mut gate = SignatureGate::new(true);
        for between in [apdu(&VERIFY), Frame::Reset, Frame::PowerOff] {
            assert_eq!(gate.step(&apdu(&SIGN_FIRST_PART)), Step::Ask);
            gate.decided(true);
            assert_eq!(gate.step(&between), Step::Pass);
            assert_eq!(gate.step(&apdu(&SIGN)), Step::Ask);
            gate.decided(true);
        }
        // Another channel's part is another command.
        assert_eq!(gate.step(&apdu(&SIGN_FIRST_PART)), Step::Ask);
        gate.decided(true);
        let mut other_channel = SIGN;
        other_channel[0] = 0x01;
        assert_eq!(gate.step(&apdu(&other_channel)), Step::Ask);
    }

    #[test]
    fn a_card_without_per_signature_approval_passes_everything() {
        let mut gate = SignatureGate::new(false);
        assert_eq!(gate.step(&apdu(&SIGN)), Step::Pass);
        assert_eq!(gate.step(&apdu(&SIGN_FIRST_PART)), Step::Pass);
    }
}
