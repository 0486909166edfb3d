//! `vscard ocsp`: the environment's OCSP responder (RFC 6960) over HTTP
//! (A.1: POST, or GET with the request base64 in the path), and its CRL
//! at `GET /crl.der`, on tiny_http (a small,
//! synchronous server: one request at a time is plenty for a test PKI).
//!
//! The responder reads the certificate index again whenever the file
//! changes (a `vscard revoke` while it runs shows at the next request);
//! it never writes the index, only a new CRL when the last one is due.
//! The signed answer to a request without a nonce is given again to the
//! same request for up to a minute while the index is unchanged
//! ([`ResponseCache`]); a request with a nonce is always signed afresh.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64ct::Encoding as _;
use der::Encode;
use tiny_http::{Header, Method, Response, Server};
use vscard_issuance::Pki;
use vscard_issuance::cards::CardFileError;
use vscard_issuance::revocation::store::INDEX_FILE;
use vscard_issuance::revocation::{CRL_PATH, CertificateIndex, OcspResponder, ResponseCache};

use crate::card_commands::print_out;

/// The largest request body read (an OCSP request for a handful of
/// certificates is a few hundred bytes).
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// How long a signed answer to a request without a nonce is given again
/// (while the index is unchanged).
const REUSE_ANSWERS_FOR: Duration = Duration::from_secs(60);
/// How many such answers are kept.
const KEPT_ANSWERS: usize = 4096;

/// The index, read again when its file changes (each read a new
/// generation), and the answers given on it.
struct IndexCache {
    path: PathBuf,
    seen: Option<(SystemTime, u64)>,
    generation: u64,
    index: CertificateIndex,
    answers: ResponseCache,
}

impl IndexCache {
    fn current(&mut self, pki: &Pki) -> Result<(), CardFileError> {
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .and_then(|meta| Some((meta.modified().ok()?, meta.len())));
        if stamp.is_none() || stamp != self.seen {
            self.index = pki.index()?;
            self.seen = stamp;
            self.generation = self.generation.wrapping_add(1);
        }
        Ok(())
    }

    fn respond(
        &mut self,
        pki: &Pki,
        responder: &OcspResponder,
        request: &[u8],
    ) -> Result<Vec<u8>, CardFileError> {
        self.current(pki)?;
        Ok(self.answers.respond(
            responder,
            request,
            &self.index,
            self.generation,
            SystemTime::now(),
        ))
    }
}

fn failure(what: &str, error: impl std::fmt::Display) -> CardFileError {
    CardFileError::Io {
        path: PathBuf::from(what),
        source: std::io::Error::other(error.to_string()),
    }
}

/// Serves until the process is stopped (SIGINT, SIGTERM).
pub fn run(pki: &Pki, listen: SocketAddr) -> Result<(), CardFileError> {
    let responder = pki.ocsp_responder(SystemTime::now())?;
    let server = Server::http(listen).map_err(|error| failure(&listen.to_string(), error))?;
    let address = server.server_addr().to_ip().unwrap_or(listen);
    if !address.ip().is_loopback() {
        eprintln!("vscard: warning: the OCSP responder listens on {address}, not loopback");
    }
    print_out(&format!(
        "OCSP responder of environment {} listening on http://{address}/ (CRL at http://{address}{CRL_PATH})\n",
        pki.environment()
    ))?;
    let mut cache = IndexCache {
        path: pki.directory().join(INDEX_FILE),
        seen: None,
        generation: 0,
        index: CertificateIndex::default(),
        answers: ResponseCache::new(REUSE_ANSWERS_FOR, KEPT_ANSWERS),
    };
    for request in server.incoming_requests() {
        let answer = answer(pki, &responder, &mut cache, request);
        if let Err(error) = answer {
            eprintln!("vscard: ocsp: {error}");
        }
    }
    Ok(())
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn reply(request: tiny_http::Request, status: u16, content_type: &str, body: Vec<u8>) {
    let mut response = Response::from_data(body).with_status_code(status);
    if let Some(header) = header("Content-Type", content_type) {
        response = response.with_header(header);
    }
    // A client that went away is its own business.
    let _ignored = request.respond(response);
}

fn answer(
    pki: &Pki,
    responder: &OcspResponder,
    cache: &mut IndexCache,
    mut request: tiny_http::Request,
) -> Result<(), CardFileError> {
    match (request.method(), request.url()) {
        (Method::Post, _) => {
            let mut body = Vec::new();
            let read = request
                .as_reader()
                .take(MAX_REQUEST_BYTES + 1)
                .read_to_end(&mut body);
            if read.is_err() || body.len() as u64 > MAX_REQUEST_BYTES {
                reply(request, 413, "text/plain", b"request too large\n".to_vec());
                return Ok(());
            }
            let der = cache.respond(pki, responder, &body)?;
            reply(request, 200, "application/ocsp-response", der);
        }
        (Method::Get, CRL_PATH) => {
            let now = SystemTime::now();
            let current = pki.last_crl()?.filter(|crl| {
                crl.tbs_cert_list
                    .next_update
                    .is_some_and(|next| next.to_system_time() > now)
            });
            let crl = match current {
                Some(crl) => crl,
                None => pki.make_crl(now)?,
            };
            let der = crl.to_der().map_err(|error| failure("crl", error))?;
            reply(request, 200, "application/pkix-crl", der);
        }
        (Method::Get, path) if path.len() > 1 => match get_request(path) {
            Some(body) => {
                let der = cache.respond(pki, responder, &body)?;
                reply(request, 200, "application/ocsp-response", der);
            }
            None => reply(
                request,
                400,
                "text/plain",
                b"not a base64 OCSP request\n".to_vec(),
            ),
        },
        _ => reply(
            request,
            404,
            "text/plain",
            format!("POST an OCSP request to /, or GET {CRL_PATH}\n").into_bytes(),
        ),
    }
    Ok(())
}

/// The DER request of a GET (RFC 6960 A.1.1): the path is `/` and the
/// URL-encoded base64 of the request; `None` when it is not that.
fn get_request(path: &str) -> Option<Vec<u8>> {
    let encoded = path.strip_prefix('/')?;
    if encoded.len() > 4 * MAX_REQUEST_BYTES as usize / 3 + 4 {
        return None;
    }
    let mut text = String::with_capacity(encoded.len());
    let mut bytes = encoded.bytes();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let high = char::from(bytes.next()?).to_digit(16)?;
            let low = char::from(bytes.next()?).to_digit(16)?;
            text.push(char::from(u8::try_from(high * 16 + low).ok()?));
        } else {
            text.push(char::from(byte));
        }
    }
    base64ct::Base64::decode_vec(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_paths_decode() {
        assert_eq!(
            get_request("/MAMCAQA%3D").as_deref(),
            Some(&[0x30, 0x03, 0x02, 0x01, 0x00][..])
        );
        assert_eq!(get_request("/MAMCAQA="), get_request("/MAMCAQA%3D"));
        assert_eq!(get_request("/%zz"), None);
        assert_eq!(get_request("/%3"), None);
        assert_eq!(get_request("/not base64!"), None);
        assert_eq!(get_request("nothing"), None);
    }
}
