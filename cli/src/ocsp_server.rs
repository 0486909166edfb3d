//! `vscard ocsp`: the environment's OCSP responder (RFC 6960) over HTTP
//! (A.1, POST), and its CRL at `GET /crl.der`, on tiny_http (a small,
//! synchronous server: one request at a time is plenty for a test PKI).
//!
//! The responder reads the certificate index again whenever the file
//! changes (a `vscard revoke` while it runs shows at the next request);
//! it never writes the index, only a new CRL when the last one is due.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use der::Encode;
use tiny_http::{Header, Method, Response, Server};
use vscard_issuance::Pki;
use vscard_issuance::cards::CardFileError;
use vscard_issuance::revocation::store::INDEX_FILE;
use vscard_issuance::revocation::{CRL_PATH, CertificateIndex, OcspResponder};

use crate::card_commands::print_out;

/// The largest request body read (an OCSP request for a handful of
/// certificates is a few hundred bytes).
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// The index, read again when its file changes.
struct IndexCache {
    path: PathBuf,
    seen: Option<(SystemTime, u64)>,
    index: CertificateIndex,
}

impl IndexCache {
    fn current(&mut self, pki: &Pki) -> Result<&CertificateIndex, CardFileError> {
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .and_then(|meta| Some((meta.modified().ok()?, meta.len())));
        if stamp.is_none() || stamp != self.seen {
            self.index = pki.index()?;
            self.seen = stamp;
        }
        Ok(&self.index)
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
        index: CertificateIndex::default(),
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
            let index = cache.current(pki)?;
            let der = responder.respond(&body, index, SystemTime::now());
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
        _ => reply(
            request,
            404,
            "text/plain",
            format!("POST an OCSP request to /, or GET {CRL_PATH}\n").into_bytes(),
        ),
    }
    Ok(())
}
