"""Shared fixtures: a seeded P-256 card (fast to issue)."""

import pytest

import vscard

PROFILE = """name = "Pat Example"
uuid = "000123456789"
pin = "123456"
unlock_code = "654321"

[[roles]]
code = "R8000"
name = "Clinical Practitioner Access Role"
business_functions = ["B0264"]
ods_code = "RX1"

[slots]
9a = "p256"
9c = "p256"
9d = "p256"
9e = "p256"
"""


@pytest.fixture(scope="session")
def image() -> bytes:
    return vscard.issue_image(PROFILE, "pytest-seed")


@pytest.fixture
def card(image):
    card = vscard.Card.from_image(image)
    card.power_on()
    card.select_piv()
    return card


class MemoryStore(vscard.CardStore):
    """An app store in a dict; `fail` makes the next commits raise."""

    def __init__(self):
        self.image = None
        self.fail = False
        self.commits = 0

    def load(self):
        return self.image

    def commit(self, image):
        if self.fail:
            raise OSError("disk full")
        self.image = bytes(image)
        self.commits += 1
