//! Socket options for the card side of a vpcd connection.
//!
//! vpcd sends the 2-byte length and the APDU in two `send()` calls. With
//! Nagle on vpcd's side and delayed ACKs on ours, the second half waits for
//! our ACK of the first, which Linux delays by up to 40 ms: about 21 APDUs
//! per second. Setting `TCP_NODELAY` (our replies leave at once) and
//! re-arming `TCP_QUICKACK` after every read (Linux clears it by itself)
//! removes that stall (issue 5 measured ~13,000 APDU/s through pcscd).
//! Elsewhere `TCP_QUICKACK` does not exist and only `TCP_NODELAY` is set.

use std::io;
use std::net::TcpStream;

use socket2::SockRef;

/// Sets `TCP_NODELAY` and, on Linux, `TCP_QUICKACK`.
pub fn tune(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    rearm_quickack(stream);
    Ok(())
}

/// Re-arms `TCP_QUICKACK` (Linux turns it off again after a while); call
/// after every read. Failures are ignored: the option is an optimisation.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn rearm_quickack(stream: &TcpStream) {
    let _ = SockRef::from(stream).set_tcp_quickack(true);
}

/// No `TCP_QUICKACK` on this platform.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn rearm_quickack(stream: &TcpStream) {
    let _ = SockRef::from(stream);
}
