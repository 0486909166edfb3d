"""pyscard against a vscard card: select PIV, show the PIN tries left,
verify the PIN. Run:  VSCARD_PIN=123456 python pyscard_pin.py
(the PIN comes from the environment, never the command line)."""

import os
import sys

from smartcard.System import readers

PIV_AID = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00]


def main() -> int:
    pin = os.environ.get("VSCARD_PIN", "")
    if not (6 <= len(pin) <= 8 and pin.isdigit()):
        print("set VSCARD_PIN to the card's 6 to 8 digit PIN", file=sys.stderr)
        return 2
    for reader in readers():
        connection = reader.createConnection()
        try:
            connection.connect()
        except Exception:  # no card in this reader
            continue
        print(f"reader: {reader}")
        _, sw1, sw2 = connection.transmit([0x00, 0xA4, 0x04, 0x00, len(PIV_AID)] + PIV_AID + [0x00])
        if (sw1, sw2) != (0x90, 0x00):
            print(f"SELECT PIV: status {sw1:02X}{sw2:02X}", file=sys.stderr)
            return 1
        # VERIFY without data: 63Cx says x tries are left.
        _, sw1, sw2 = connection.transmit([0x00, 0x20, 0x00, 0x80])
        print(f"PIN tries left: {sw2 & 0x0F}")
        padded = list(pin.encode("ascii")) + [0xFF] * (8 - len(pin))
        _, sw1, sw2 = connection.transmit([0x00, 0x20, 0x00, 0x80, 0x08] + padded)
        connection.disconnect()
        if (sw1, sw2) != (0x90, 0x00):
            print(f"VERIFY PIN: status {sw1:02X}{sw2:02X}", file=sys.stderr)
            return 1
        print("PIN verified")
        return 0
    print("no reader with a card", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
