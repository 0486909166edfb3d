"""PyKCS11 with OpenSC's PKCS#11 module against a vscard card: log in,
sign with the PIV Authentication key (slot 9A, CKA_ID 01), and write the
signature and the slot's certificate so that `openssl` can check one with
the other. Run:

    VSCARD_PIN=123456 python pykcs11_sign.py OUT_DIR

(the PIN comes from the environment, never the command line)."""

import os
import sys
from pathlib import Path

import PyKCS11

MODULE = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
DATA = b"vscard from Python"


def main() -> int:
    if len(sys.argv) != 2 or "VSCARD_PIN" not in os.environ:
        print("usage: VSCARD_PIN=... pykcs11_sign.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    lib = PyKCS11.PyKCS11Lib()
    lib.load(MODULE)
    slots = lib.getSlotList(tokenPresent=True)
    if not slots:
        print("no token", file=sys.stderr)
        return 1
    print(f"token: {lib.getTokenInfo(slots[0]).label.strip()}")
    session = lib.openSession(slots[0], PyKCS11.CKF_SERIAL_SESSION)
    session.login(os.environ["VSCARD_PIN"])
    try:
        key_id = (0x01,)
        key = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_ID, key_id)])[0]
        # The default card's 9A key is RSA-2048. (For a P-256 key use
        # CKM_ECDSA_SHA256; PKCS#11 returns r || s, which openssl wants
        # DER-encoded.)
        mechanism = PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS, None)
        signature = bytes(session.sign(key, DATA, mechanism))
        cert = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_CERTIFICATE), (PyKCS11.CKA_ID, key_id)])[0]
        der = bytes(session.getAttributeValue(cert, [PyKCS11.CKA_VALUE])[0])
    finally:
        session.logout()
        session.closeSession()
    (out / "data.bin").write_bytes(DATA)
    (out / "signature.bin").write_bytes(signature)
    (out / "certificate.der").write_bytes(der)
    print(f"signed {len(DATA)} bytes: {len(signature)}-byte signature")
    return 0


if __name__ == "__main__":
    sys.exit(main())
