"""What a call through the Python bindings adds to Card::transmit.

Times `card.transmit(apdu)` from Python against `Card::transmit` of the
same card in Rust (`card.native_transmit_ns`), in the same run, for a
non-crypto APDU (VERIFY status query: no commit, no key), and reports the
wheel's size. Usage (release numbers: build the wheel with
`maturin build --release`):

    python benches/python/bindings_transmit.py [COUNT] [WHEEL]
"""

import os
import sys
import time

import vscard

PROFILE = """name = "Bench Example"
uuid = "000123456789"
pin = "123456"
unlock_code = "654321"
[[roles]]
code = "R8000"
name = "Clinical Practitioner Access Role"
ods_code = "RX1"
[slots]
9a = "p256"
9c = "p256"
9d = "p256"
9e = "p256"
"""

PIN_STATUS = bytes.fromhex("00200080")


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    card = vscard.Card.from_image(vscard.issue_image(PROFILE, "bench"))
    card.power_on()
    card.select_piv()
    assert card.transmit(PIN_STATUS) == b"\x63\xc3"
    transmit = card.transmit
    for _ in range(min(count, 1000)):
        transmit(PIN_STATUS)
    started = time.perf_counter_ns()
    for _ in range(count):
        transmit(PIN_STATUS)
    python_ns = (time.perf_counter_ns() - started) / count
    native_ns = card.native_transmit_ns(PIN_STATUS, count)
    # UniFFI's own floor: a call that takes nothing and returns the
    # card's ATR bytes (no APDU lowered, no card work).
    atr = card.atr
    started = time.perf_counter_ns()
    for _ in range(count):
        atr()
    floor_ns = (time.perf_counter_ns() - started) / count
    print(f"python transmit   {python_ns / 1000:8.2f} us per APDU")
    print(f"Card::transmit    {native_ns / 1000:8.2f} us per APDU")
    print(f"added by bindings {(python_ns - native_ns) / 1000:8.2f} us per APDU (goal <= 2)")
    print(f"card.atr() call   {floor_ns / 1000:8.2f} us (UniFFI's floor: no argument, bytes back)")
    # For vscard-bench: one tab-separated line of the figures, in ns.
    print(f"vscard-bench\t{python_ns:.1f}\t{native_ns:.1f}\t{floor_ns:.1f}")
    if len(sys.argv) > 2:
        print(f"wheel             {os.path.getsize(sys.argv[2]) / 1e6:8.1f} MB ({os.path.basename(sys.argv[2])})")


if __name__ == "__main__":
    main()
