//! Where relying parties find an environment's revocation status: the CRL
//! distribution point and the OCSP responder URL its card certificates
//! carry.

use serde::{Deserialize, Serialize};

/// The address `vscard ocsp` listens on by default, which the default URLs
/// point at (loopback: nothing leaves the machine).
pub const DEFAULT_RESPONDER_ADDRESS: &str = "127.0.0.1:8090";
/// Path of the CRL (DER) on the responder.
pub const CRL_PATH: &str = "/crl.der";

/// The revocation URLs of an environment (`<pki>/revocation.json`), put in
/// every card certificate issued afterwards: the CRL distribution point
/// (RFC 5280 4.2.1.13) and the OCSP responder of the Authority
/// Information Access extension (4.2.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationUrls {
    /// The CRL distribution point, e.g. `http://127.0.0.1:8090/crl.der`.
    pub crl_url: String,
    /// The OCSP responder, e.g. `http://127.0.0.1:8090/`.
    pub ocsp_url: String,
}

impl Default for RevocationUrls {
    fn default() -> RevocationUrls {
        RevocationUrls {
            crl_url: format!("http://{DEFAULT_RESPONDER_ADDRESS}{CRL_PATH}"),
            ocsp_url: format!("http://{DEFAULT_RESPONDER_ADDRESS}/"),
        }
    }
}

/// The longest URL taken.
pub const MAX_URL_BYTES: usize = 256;

/// Checks a revocation URL: `http://` (RFC 5280 4.2.1.13 and RFC 6960
/// A.1 expect HTTP; HTTPS would need revocation checking of its own), a
/// host, printable ASCII without spaces, at most [`MAX_URL_BYTES`].
pub fn check_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!("must start with http://, got {url:?}"));
    };
    if url.len() > MAX_URL_BYTES {
        return Err(format!("at most {MAX_URL_BYTES} bytes"));
    }
    if !url.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".to_owned());
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let defaults = RevocationUrls::default();
        assert_eq!(defaults.crl_url, "http://127.0.0.1:8090/crl.der");
        assert!(check_url(&defaults.crl_url).is_ok());
        assert!(check_url(&defaults.ocsp_url).is_ok());
        assert!(check_url("https://x/").is_err());
        assert!(check_url("http:///crl").is_err());
        assert!(check_url("http://a b/").is_err());
        assert!(check_url(&format!("http://{}", "a".repeat(300))).is_err());
    }
}
