#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (run from anywhere).

The inputs follow the formats in fuzz/README.md. The card image
(seeds/card.json) was issued with
`vscard issue --out card.json --seed fuzz-seed --pin 123456 --unlock-code 654321`;
the journal records below are written the way the FileStore writes them
(magic, era, position, length, JSON payload, SHA-256), so the seeds load.
"""
import hashlib
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


PIV_AID = bytes.fromhex("A000000308000010000100")
SELECT = bytes.fromhex("00A4040009A00000030800001000") + b"\x00"
VERIFY = bytes.fromhex("0020008008") + b"123456\xff\xff"

# command_apdu: every ISO case, short and extended, and a few refusals.
apdus = {
    "case1": "00A40000",
    "case2s": "00CA7F6800",
    "case3s": "0020008008313233343536FFFF",
    "case4s_select": SELECT.hex(),
    "case2e": "00CB3FFF000000",
    "case3e": "00DB3FFF000005" + "5C035FC102",
    "case4e": "00CB3FFF0000055C035FC1050000",
    "chained": "10DB3FFF04AABBCCDD",
    "channel3": "03A4040009A0000003080000100000",
    "bad_lc": "0020008009313233",
    "bad_cla": "FF000000",
}
for name, hexed in apdus.items():
    write("command_apdu", name, bytes.fromhex(hexed))

# vpcd_frames: piece size, then the stream vpcd sends on a card session.
def frame(payload):
    return struct.pack(">H", len(payload)) + payload

session = frame(b"\x01") + frame(b"\x04") + frame(SELECT) + frame(VERIFY) + frame(b"\x00")
write("vpcd_frames", "session_whole", b"\x00" + session)
write("vpcd_frames", "session_bytewise", b"\x01" + session)
write("vpcd_frames", "session_pieces3", b"\x03" + session)
write("vpcd_frames", "bad_frames", b"\x00" + frame(b"") + frame(b"\x07") + b"\x00\x10\x00\xa4")

# piv_sequence: programs of operations (opcode, operands).
INS = [0x20, 0x24, 0x2C, 0xCB, 0xDB, 0x87, 0x47, 0xFD, 0xF8, 0xF7, 0xFF, 0xFB, 0xFE, 0xFA,
       0xC0, 0xA4, 0x70, 0x00]


def cmd(ins, p1, p2, data=b"", cla=0):
    return bytes([1, cla, INS.index(ins), p1, p2, len(data)]) + data


def raw(apdu):
    return bytes([0, len(apdu)]) + apdu


VERIFY_RIGHT, VERIFY_WRONG = b"\x02\x00", b"\x02\x03"
MGMT, CUT_BEFORE, CUT_AFTER, REBUILD, CYCLE = b"\x03", b"\x05\x00", b"\x05\x80", b"\x06", b"\x07"
RRC_RIGHT, RRC_WRONG = b"\x04\x00", b"\x04\x01"
GET_CHUID = cmd(0xCB, 0x3F, 0xFF, bytes.fromhex("5C035FC102"))
programs = {
    "verify_then_read": VERIFY_RIGHT + GET_CHUID + cmd(0xCB, 0x3F, 0xFF, bytes.fromhex("5C035FC109")),
    "block_and_unblock": VERIFY_WRONG * 3 + VERIFY_RIGHT + RRC_RIGHT + VERIFY_RIGHT,
    "puk_blocked": VERIFY_WRONG * 3 + RRC_WRONG * 3 + RRC_RIGHT,
    "yubico_reset": VERIFY_WRONG * 3 + RRC_WRONG * 3 + cmd(0xFB, 0, 0) + VERIFY_RIGHT,
    "generate_p256": MGMT + cmd(0x47, 0x00, 0x9A, bytes.fromhex("AC03800111")),
    "import_and_set_mgmt": MGMT + cmd(0xFE, 0x11, 0x9C, bytes.fromhex("0620") + bytes(range(1, 33)))
    + cmd(0xFF, 0xFF, 0xFF, bytes.fromhex("039B18") + bytes(range(24))),
    "tear_verify": CUT_BEFORE + VERIFY_WRONG + CUT_AFTER + VERIFY_RIGHT + REBUILD + VERIFY_WRONG,
    "tear_reset_counter": VERIFY_WRONG * 3 + CUT_AFTER + RRC_RIGHT + REBUILD + VERIFY_RIGHT,
    "sign_9c": VERIFY_RIGHT + cmd(0x87, 0x11, 0x9C, bytes.fromhex("7C248200") + b"\x81\x20" + bytes(32)),
    "metadata": cmd(0xF7, 0x00, 0x80) + cmd(0xF7, 0x00, 0x81) + cmd(0xF7, 0x00, 0x9A) + cmd(0xFD, 0, 0),
    "change_pin_puk": cmd(0x24, 0x00, 0x80, b"123456\xff\xff" + b"246810\xff\xff")
    + cmd(0x24, 0x00, 0x81, b"12345678" + b"87654321"),
    "chained_put_data": MGMT + cmd(0xDB, 0x3F, 0xFF, bytes.fromhex("5C035FC10553"), cla=0x10)
    + cmd(0xDB, 0x3F, 0xFF, bytes.fromhex("02AABB")),
    "long_response": GET_CHUID + cmd(0xCB, 0x3F, 0xFF, bytes.fromhex("5C035FC105")) + b"\x08" * 4 + CYCLE,
    "random_bytes": raw(bytes.fromhex("00870000")) + raw(b"\x00") + raw(SELECT) + raw(bytes.fromhex("0170000000")),
}
for name, program in programs.items():
    write("piv_sequence", name, program)

# file_store: flags, u16 image length, image, journal.
with open(os.path.join(HERE, "card.json"), "rb") as f:
    image_bytes = f.read()
image = json.loads(image_bytes)
era = bytes.fromhex(image["era"])
applet = "A000000308000010000100"
pin = image["applets"][applet]["pin"]


def slot(index, parts):
    payload = json.dumps({"applet": applet, "parts": parts}, separators=(",", ":")).encode()
    body = b"vscard-journal/1" + era + struct.pack("<Q", index) + struct.pack("<I", len(payload)) + payload
    record = body + hashlib.sha256(body).digest()
    return record + bytes(4096 - len(record))


def store_input(flags, image, journal=b""):
    return bytes([flags]) + struct.pack(">H", len(image)) + image + journal


journal = slot(0, {"pin": dict(pin, tries_left=2)}) + slot(1, {"pin": dict(pin, tries_left=1)})
write("file_store", "image_only", store_input(0, image_bytes))
write("file_store", "image_and_journal", store_input(2, image_bytes, journal.rstrip(b"\x00")))
write("file_store", "fixed_up", store_input(1 | 2 | 8, image_bytes, journal.rstrip(b"\x00")))
write("file_store", "raw_short_journal", store_input(2 | 4, image_bytes, journal[:100]))
small = {"format": "vscard-card-image", "version": 1, "checksum": "", "applets": {"F000000001": {"counter": 1}}}
write("file_store", "version1_fixed", store_input(1, json.dumps(small).encode()))
write("file_store", "not_json", store_input(0, b"{\"format\": \"vscard-card-image\", \"vers"))

# profile: format byte (0 TOML, 1 JSON), then the text.
data = os.path.join(HERE, "..", "..", "issuance", "tests", "data", "issuance")
for name in ("minimal", "full"):
    with open(os.path.join(data, name + ".toml"), "rb") as f:
        write("profile", name + "_toml", b"\x00" + f.read())
demo = {"name": "Sample Specimen", "uuid": "000123456789", "pin": "123456", "unlock_code": "654321",
        "seed": "demo-seed-1", "roles": [{"code": "R8000", "name": "Clinical Practitioner Access Role",
                                           "business_functions": ["B0264"], "ods_code": "RX1"}]}
write("profile", "demo_json", b"\x01" + json.dumps(demo, indent=1).encode())
write("profile", "bad_pin_toml", b"\x00" + b'name = "A B"\nuuid = "000123456789"\npin = "12x456"\nunlock_code = "654321"\n')
