"""The Python bindings against the built wheel (run by
cli/tests/python_bindings.rs through pytest)."""

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

import vscard
from conftest import PROFILE, MemoryStore


def test_a_seeded_card_is_reproducible_and_answers_select(image):
    # Same seed, same keys: the public key in 9A is the same.
    again = vscard.Card.from_image(vscard.issue_image(PROFILE, "pytest-seed"))
    first = vscard.Card.from_image(image)
    public = lambda c: x509.load_der_x509_certificate(c.read_certificate("9a")).public_key()
    assert public(again) == public(first)
    card = vscard.Card.from_image(image)
    atr = card.power_on()
    assert atr == bytes.fromhex("3b8b8131fe4580f9a0000003080000100042")
    answer = card.transmit(bytes.fromhex("00A4040009A00000030800001000"))
    assert answer[-2:] == b"\x90\x00"
    assert answer[0] == 0x61


def test_wrong_pin_three_times_blocks_and_the_unlock_code_unblocks(card):
    assert card.pin_tries_left() == 3
    assert card.verify_pin("000000") == 0x63C2
    assert card.verify_pin("000000") == 0x63C1
    # The third wrong PIN uses the last try (63C0, as PIV cards answer);
    # from then on the PIN is blocked, the right one too.
    assert card.verify_pin("000000") == 0x63C0
    assert card.verify_pin("000000") == 0x6983
    assert card.verify_pin("123456") == 0x6983
    assert card.pin_tries_left() == 0
    assert card.unblock_pin("111111", "222222") == 0x63C2
    assert card.puk_tries_left() == 2
    assert card.unblock_pin("654321", "222222") == 0x9000
    assert card.pin_tries_left() == 3
    assert card.verify_pin("222222") == 0x9000
    assert card.change_pin("222222", "333333") == 0x9000
    assert card.verify_pin("333333") == 0x9000


def verify(card, slot, digest, signature):
    cert = x509.load_der_x509_certificate(card.read_certificate(slot))
    cert.public_key().verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def test_sign_with_9a_and_9c_verifies_with_the_certificates(card):
    digest = hashlib.sha256(b"to be signed").digest()
    with pytest.raises(vscard.VscardError.Status) as refused:
        card.sign("9a", digest)
    assert refused.value.sw == 0x6982
    assert card.verify_pin("123456") == 0x9000
    verify(card, "9a", digest, card.sign("9a", digest))
    # 9C is PIN-always: one VERIFY, one signature.
    assert card.verify_pin("123456") == 0x9000
    verify(card, "9c", digest, card.sign("9c", digest))
    with pytest.raises(vscard.VscardError.Status) as again:
        card.sign("9c", digest)
    assert again.value.sw == 0x6982
    assert card.read_certificate("9d") is not None


def test_errors_are_typed_exceptions(image):
    with pytest.raises(vscard.VscardError.Profile):
        vscard.issue_image("name = 1", "seed")
    with pytest.raises(vscard.VscardError.Image):
        vscard.Card.from_image(b"not an image")
    card = vscard.Card.from_image(image)
    with pytest.raises(vscard.VscardError.Card):
        card.transmit(b"\x00\xa4\x04\x00")
    card.power_on()
    with pytest.raises(vscard.VscardError.Argument):
        card.sign("9z", b"")
    # A malformed APDU is answered as a card answers it.
    assert card.transmit(b"\x00")[-2:] == b"\x67\x00"


def test_a_store_that_fails_mid_verify_regains_no_try(image):
    store = MemoryStore()
    card = vscard.Card.from_image(image, store=store)
    assert store.commits == 1
    card.power_on()
    card.select_piv()
    assert card.verify_pin("000000") == 0x63C2
    store.fail = True
    # The try cannot be committed: refused before the compare, and the
    # correct PIN does not get through either.
    assert card.verify_pin("000000") == 0x6581
    assert card.verify_pin("123456") == 0x6581
    store.fail = False
    assert card.pin_tries_left() == 2
    reopened = vscard.Card.from_image(image, store=store)
    assert reopened.pin_tries_left() == 2


def test_a_card_reopened_from_the_store_keeps_its_state(image):
    store = MemoryStore()
    card = vscard.Card.from_image(image, store=store)
    card.power_on()
    card.select_piv()
    assert card.change_pin("123456", "246801") == 0x9000
    assert card.verify_pin("000000") == 0x63C2
    # The store's image wins over the one given.
    again = vscard.Card.from_image(image, store=store)
    again.power_on()
    again.select_piv()
    assert again.pin_tries_left() == 2
    assert again.verify_pin("123456") == 0x63C1
    assert again.verify_pin("246801") == 0x9000
    assert vscard.Card.from_image(again.snapshot()).pin_tries_left() == 3


def test_an_encrypted_image_opens_only_with_its_key(image):
    key = bytes(range(32))
    sealed = vscard.seal_image(image, key, "000123456789")
    assert sealed.startswith(b"VSCARDSEALED")
    assert b"123456\xff\xff" not in sealed
    card = vscard.Card.from_image(sealed, key=key)
    assert card.pin_tries_left() == 3
    with pytest.raises(vscard.VscardError.Encryption) as wrong:
        vscard.Card.from_image(sealed, key=bytes(32))
    assert "wrong key" in str(wrong.value)
    with pytest.raises(vscard.VscardError.Encryption):
        vscard.Card.from_image(sealed)
    flipped = bytearray(sealed)
    flipped[len(flipped) // 2] ^= 1
    with pytest.raises(vscard.VscardError.Encryption):
        vscard.Card.from_image(bytes(flipped), key=key)
    # A sealed app store: what it is given is sealed too.
    store = MemoryStore()
    vscard.Card.from_image(sealed, store=store, key=key)
    assert store.image.startswith(b"VSCARDSEALED")
    with pytest.raises(vscard.VscardError.Encryption):
        vscard.Card.from_image(image, store=store)


def test_an_old_copy_of_a_sealed_store_is_refused(image):
    key = bytes(range(32))
    store = MemoryStore()
    card = vscard.Card.from_image(
        vscard.seal_image(image, key, "000123456789"), store=store, key=key
    )
    card.power_on()
    card.select_piv()
    before = store.image
    assert card.verify_pin("000000") == 0x63C2
    # The app records each commit's generation where the store's bytes
    # cannot reach (its keystore).
    last = vscard.sealed_generation(store.image)
    assert last > vscard.sealed_generation(before)
    # Someone puts the copy from before the wrong try back.
    store.image = before
    with pytest.raises(vscard.VscardError.Encryption) as old:
        vscard.Card.from_image(b"", store=store, key=key, min_generation=last)
    assert "older than generation" in str(old.value)
    # Another card's identity under the same key is refused too.
    with pytest.raises(vscard.VscardError.Encryption):
        vscard.Card.from_image(before, key=key, identity="999999999999")
    with pytest.raises(vscard.VscardError.Encryption):
        vscard.sealed_generation(image)


class PythonKeystore(vscard.Keystore):
    """The platform keystore, played by `cryptography`."""

    def __init__(self):
        self.keys = {}
        self.signed = []

    def add(self, key_id):
        self.keys[key_id] = ec.generate_private_key(ec.SECP256R1())
        return self.keys[key_id].public_key()

    def sign(self, key_id, algorithm, input):
        self.signed.append((key_id, algorithm))
        return self.keys[key_id].sign(bytes(input), ec.ECDSA(utils.Prehashed(hashes.SHA256())))

    def ecdh(self, key_id, algorithm, peer):
        raise vscard.KeystoreError.Unsupported("ecdh")

    def delete(self, key_id):
        self.keys.pop(key_id, None)


def test_a_python_keystore_signs_for_9c(image):
    from cryptography.hazmat.primitives import serialization

    keystore = PythonKeystore()
    public = keystore.add("phone-key-1")
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    held = vscard.install_keystore_key(image, "9c", "phone-key-1", spki)
    # The image references the key; no private key for 9C is in it.
    assert b"phone-key-1" in held
    card = vscard.Card.from_image(held, keystore=keystore)
    card.power_on()
    card.select_piv()
    digest = hashlib.sha256(b"signed on the phone").digest()
    with pytest.raises(vscard.VscardError.Status) as refused:
        card.sign("9c", digest)
    assert refused.value.sw == 0x6982
    assert keystore.signed == []
    assert card.verify_pin("123456") == 0x9000
    signature = card.sign("9c", digest)
    public.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    assert keystore.signed == [("phone-key-1", "P-256")]
    # Without the keystore the card cannot use the key: 6F00.
    alone = vscard.Card.from_image(held)
    alone.power_on()
    alone.select_piv()
    assert alone.verify_pin("123456") == 0x9000
    with pytest.raises(vscard.VscardError.Status) as unavailable:
        alone.sign("9c", digest)
    assert unavailable.value.sw == 0x6F00


def test_the_benchmark_runs(card, capsys):
    """benches/python/bindings_transmit.py, tiny: both timings are there."""
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).parents[3] / "benches" / "python" / "bindings_transmit.py"
    sys.argv = [str(script), "50"]
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "python transmit" in out and "Card::transmit" in out and "added by bindings" in out
    assert card.native_transmit_ns(bytes.fromhex("00200080"), 10) > 0
