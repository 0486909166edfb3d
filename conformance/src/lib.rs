//! Conformance scenarios written once against a `Transport` and run
//! in-process, through pcscd, or against a physical card.
