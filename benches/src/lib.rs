//! Benchmarks for vscard: criterion benches of the in-process card and the
//! end-to-end harnesses that measure the pcscd path against its floor.
