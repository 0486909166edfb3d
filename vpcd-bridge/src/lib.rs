//! The vpcd bridge: connects virtual cards to pcscd through the vsmartcard
//! vpcd driver (framing, client and reverse modes, reconnects, insert and
//! remove), and hosts the `vscard` command line.
