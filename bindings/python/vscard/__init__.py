"""vscard: a virtual PIV smartcard in this process (see the README)."""

from .vscard import *  # noqa: F401,F403  (the UniFFI-generated module)
