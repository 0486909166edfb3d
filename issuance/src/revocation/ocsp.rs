//! OCSP (RFC 6960): the request and response structures as typed `der`
//! values, and a responder that answers from the certificate index.
//!
//! No RustCrypto OCSP crate fits this workspace (`x509-ocsp` 0.2 is built
//! on x509-cert 0.2 / der 0.7; this one uses 0.3 / 0.8), so the ASN.1 of
//! RFC 6960 4.1.1 and 4.2.1 is declared here with `der`'s derive macros,
//! reusing x509-cert's names, extensions and certificates.
//!
//! The responder is delegated (4.2.2.2): its certificate is issued by the
//! Sub CA with extended key usage OCSPSigning and id-pkix-ocsp-nocheck,
//! and travels in each response. It answers `good` for a certificate of
//! the index that is not revoked, `revoked` with time and reason for one
//! that is, and `unknown` for anything else (another issuer, a serial it
//! never issued, a hash algorithm other than SHA-1 and SHA-256). A nonce
//! (4.4.1) in the request is returned in the response.

use std::time::{Duration, SystemTime};

use der::asn1::{BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use der::{Choice, Decode, Encode, Enumerated, Sequence};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::Version;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::{Extension, Extensions};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use super::index::{CertificateIndex, CertificateStatus, parse_rfc3339};
use crate::{ECDSA_WITH_SHA256, IssuanceError};

/// `id-pkix-ocsp-basic` (RFC 6960 4.2.1).
pub const OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// `id-pkix-ocsp-nonce` (RFC 6960 4.4.1).
pub const OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// `id-sha1` (RFC 3279 2.2.1), the hash `openssl ocsp` puts in CertIDs.
pub const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// `id-sha256` (RFC 5754 2.2).
pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// How long a response may be cached (its nextUpdate after thisUpdate).
pub const RESPONSE_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// `OCSPRequest` (RFC 6960 4.1.1). A signature on the request is read
/// and ignored (requests need not be signed here).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
#[allow(missing_docs)]
pub struct OcspRequest {
    pub tbs_request: TbsRequest,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub optional_signature: Option<der::Any>,
}

/// `TBSRequest` (RFC 6960 4.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
#[allow(missing_docs)]
pub struct TbsRequest {
    #[asn1(
        context_specific = "0",
        tag_mode = "EXPLICIT",
        default = "Default::default"
    )]
    pub version: Version,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub requestor_name: Option<GeneralName>,
    pub request_list: Vec<Request>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    pub request_extensions: Option<Extensions>,
}

/// `Request` (RFC 6960 4.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
#[allow(missing_docs)]
pub struct Request {
    pub req_cert: CertId,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub single_request_extensions: Option<Extensions>,
}

/// `CertID` (RFC 6960 4.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
#[allow(missing_docs)]
pub struct CertId {
    pub hash_algorithm: AlgorithmIdentifierOwned,
    pub issuer_name_hash: OctetString,
    pub issuer_key_hash: OctetString,
    pub serial_number: SerialNumber,
}

/// `OCSPResponseStatus` (RFC 6960 4.2.1).
#[derive(Clone, Copy, Debug, Eq, PartialEq, Enumerated)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum OcspResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

/// `OCSPResponse` (RFC 6960 4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
#[allow(missing_docs)]
pub struct OcspResponse {
    pub response_status: OcspResponseStatus,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub response_bytes: Option<ResponseBytes>,
}

/// `ResponseBytes` (RFC 6960 4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
#[allow(missing_docs)]
pub struct ResponseBytes {
    pub response_type: ObjectIdentifier,
    pub response: OctetString,
}

/// `BasicOCSPResponse` (RFC 6960 4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
#[allow(missing_docs)]
pub struct BasicOcspResponse {
    pub tbs_response_data: ResponseData,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: BitString,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub certs: Option<Vec<Certificate>>,
}

/// `ResponseData` (RFC 6960 4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
#[allow(missing_docs)]
pub struct ResponseData {
    #[asn1(
        context_specific = "0",
        tag_mode = "EXPLICIT",
        default = "Default::default"
    )]
    pub version: Version,
    pub responder_id: ResponderId,
    pub produced_at: GeneralizedTime,
    pub responses: Vec<SingleResponse>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub response_extensions: Option<Extensions>,
}

/// `ResponderID` (RFC 6960 4.2.1; the module's tags are explicit).
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
#[allow(missing_docs)]
pub enum ResponderId {
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    /// SHA-1 of the responder's public key bits.
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

/// `SingleResponse` (RFC 6960 4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
#[allow(missing_docs)]
pub struct SingleResponse {
    pub cert_id: CertId,
    pub cert_status: CertStatus,
    pub this_update: GeneralizedTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub next_update: Option<GeneralizedTime>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub single_extensions: Option<Extensions>,
}

/// `CertStatus` (RFC 6960 4.2.1; implicit tags as the ASN.1 says).
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
#[allow(missing_docs)]
pub enum CertStatus {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfo),
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

/// `RevokedInfo` (RFC 6960 4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
#[allow(missing_docs)]
pub struct RevokedInfo {
    pub revocation_time: GeneralizedTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub revocation_reason: Option<CrlReason>,
}

/// The issuer hashes a CertID may carry, for one hash algorithm.
#[derive(Clone, Debug)]
struct IssuerHashes {
    algorithm: ObjectIdentifier,
    name: Vec<u8>,
    key: Vec<u8>,
}

/// An OCSP responder for one Sub CA: its delegated certificate and key.
#[derive(Clone)]
pub struct OcspResponder {
    certificate: Certificate,
    signing_key: SigningKey,
    key_hash: Vec<u8>,
    issuer: [IssuerHashes; 2],
}

impl std::fmt::Debug for OcspResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspResponder")
            .field("signing_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn public_key_bits(certificate: &Certificate) -> &[u8] {
    certificate
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
}

impl OcspResponder {
    /// A responder answering for the certificates `sub_ca` issued, signing
    /// with `signing_key` under `certificate` (issued by `sub_ca`).
    pub fn new(
        sub_ca: &Certificate,
        certificate: Certificate,
        signing_key: SigningKey,
    ) -> Result<OcspResponder, IssuanceError> {
        let name = sub_ca.tbs_certificate().subject().to_der()?;
        let key = public_key_bits(sub_ca);
        let issuer = [
            IssuerHashes {
                algorithm: SHA1,
                name: Sha1::digest(&name).to_vec(),
                key: Sha1::digest(key).to_vec(),
            },
            IssuerHashes {
                algorithm: SHA256,
                name: Sha256::digest(&name).to_vec(),
                key: Sha256::digest(key).to_vec(),
            },
        ];
        let key_hash = Sha1::digest(public_key_bits(&certificate)).to_vec();
        Ok(OcspResponder {
            certificate,
            signing_key,
            key_hash,
            issuer,
        })
    }

    /// The DER `OCSPResponse` to the DER `request`, from `index` at `now`:
    /// `malformedRequest` for bytes that are not an OCSP request, and
    /// `internalError` if signing fails; never a panic.
    pub fn respond(&self, request: &[u8], index: &CertificateIndex, now: SystemTime) -> Vec<u8> {
        self.answer(request, index, now).0
    }

    /// [`OcspResponder::respond`], and whether the answer may be given
    /// again to the same request bytes (a successful answer to a request
    /// without a nonce).
    fn answer(&self, request: &[u8], index: &CertificateIndex, now: SystemTime) -> (Vec<u8>, bool) {
        let (response, reusable) = match OcspRequest::from_der(request) {
            Err(_) => (unsuccessful(OcspResponseStatus::MalformedRequest), false),
            Ok(request) if request.tbs_request.request_list.is_empty() => {
                (unsuccessful(OcspResponseStatus::MalformedRequest), false)
            }
            Ok(request) => {
                let nonce = request
                    .tbs_request
                    .request_extensions
                    .iter()
                    .flatten()
                    .any(|extension| extension.extn_id == OCSP_NONCE);
                match self.successful(&request, index, now) {
                    Ok(response) => (response, !nonce),
                    Err(_) => (unsuccessful(OcspResponseStatus::InternalError), false),
                }
            }
        };
        // An OCSPResponse of a status and at most a few kilobytes always
        // encodes; the fallback is the fixed internalError encoding.
        let der = response
            .to_der()
            .unwrap_or_else(|_| vec![0x30, 0x03, 0x0A, 0x01, 0x02]);
        (der, reusable)
    }

    fn status_of(
        &self,
        id: &CertId,
        index: &CertificateIndex,
    ) -> Result<CertStatus, IssuanceError> {
        let ours = self.issuer.iter().any(|hashes| {
            hashes.algorithm == id.hash_algorithm.oid
                && hashes.name == id.issuer_name_hash.as_bytes()
                && hashes.key == id.issuer_key_hash.as_bytes()
        });
        if !ours {
            return Ok(CertStatus::Unknown(Null));
        }
        let serial = hex::encode_upper(id.serial_number.as_bytes());
        Ok(match index.find(&serial).map(|entry| &entry.status) {
            None => CertStatus::Unknown(Null),
            Some(CertificateStatus::Valid) => CertStatus::Good(Null),
            Some(CertificateStatus::Revoked { revoked_at, reason }) => {
                CertStatus::Revoked(RevokedInfo {
                    revocation_time: generalized(parse_rfc3339(revoked_at)?)?,
                    revocation_reason: Some(reason.to_crl_reason()),
                })
            }
        })
    }

    fn successful(
        &self,
        request: &OcspRequest,
        index: &CertificateIndex,
        now: SystemTime,
    ) -> Result<OcspResponse, IssuanceError> {
        let this_update = generalized(now)?;
        let next_update = generalized(now + RESPONSE_LIFETIME)?;
        let mut responses = Vec::with_capacity(request.tbs_request.request_list.len());
        for single in &request.tbs_request.request_list {
            responses.push(SingleResponse {
                cert_id: single.req_cert.clone(),
                cert_status: self.status_of(&single.req_cert, index)?,
                this_update,
                next_update: Some(next_update),
                single_extensions: None,
            });
        }
        let nonce: Option<Vec<Extension>> = request
            .tbs_request
            .request_extensions
            .iter()
            .flatten()
            .find(|extension| extension.extn_id == OCSP_NONCE)
            .map(|extension| vec![extension.clone()]);
        let data = ResponseData {
            version: Version::V1,
            responder_id: ResponderId::ByKey(OctetString::new(self.key_hash.clone())?),
            produced_at: this_update,
            responses,
            response_extensions: nonce,
        };
        let signature: DerSignature = self.signing_key.sign(&data.to_der()?);
        let basic = BasicOcspResponse {
            tbs_response_data: data,
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
            signature: BitString::from_bytes(signature.as_bytes())?,
            certs: Some(vec![self.certificate.clone()]),
        };
        Ok(OcspResponse {
            response_status: OcspResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: OCSP_BASIC,
                response: OctetString::new(basic.to_der()?)?,
            }),
        })
    }
}

/// Pre-produced responses (RFC 6960 2.4, as RFC 5019 2.2.1 lets a
/// high-volume responder do): the signed answer to a request without a
/// nonce is given again to the same request bytes for up to `max_age`,
/// while the index is the same (`generation`, which the caller changes
/// whenever it reads a changed index). A request with a nonce is always
/// answered afresh. At most `capacity` answers are kept.
#[derive(Debug)]
pub struct ResponseCache {
    max_age: Duration,
    capacity: usize,
    generation: u64,
    answers: std::collections::HashMap<Vec<u8>, (SystemTime, Vec<u8>)>,
}

impl ResponseCache {
    /// An empty cache.
    pub fn new(max_age: Duration, capacity: usize) -> ResponseCache {
        ResponseCache {
            max_age,
            capacity,
            generation: 0,
            answers: std::collections::HashMap::new(),
        }
    }

    /// The answer to `request` from `responder` on `index` (of
    /// `generation`) at `now`: a kept one when it may be, else a new one.
    pub fn respond(
        &mut self,
        responder: &OcspResponder,
        request: &[u8],
        index: &CertificateIndex,
        generation: u64,
        now: SystemTime,
    ) -> Vec<u8> {
        if generation != self.generation {
            self.answers.clear();
            self.generation = generation;
        }
        if let Some((produced, answer)) = self.answers.get(request) {
            let fresh = now
                .duration_since(*produced)
                .is_ok_and(|age| age < self.max_age);
            if fresh {
                return answer.clone();
            }
        }
        let (answer, reusable) = responder.answer(request, index, now);
        if reusable {
            if self.answers.len() >= self.capacity {
                self.answers.clear();
            }
            self.answers.insert(request.to_vec(), (now, answer.clone()));
        }
        answer
    }
}

fn unsuccessful(status: OcspResponseStatus) -> OcspResponse {
    OcspResponse {
        response_status: status,
        response_bytes: None,
    }
}

/// A GeneralizedTime in whole seconds (RFC 6960 uses GeneralizedTime
/// throughout; RFC 5280 4.1.2.5.2 forbids fractions).
fn generalized(at: SystemTime) -> Result<GeneralizedTime, IssuanceError> {
    let date = der::DateTime::from_system_time(at).map_err(IssuanceError::TimeOutOfRange)?;
    Ok(GeneralizedTime::from_date_time(date))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_malformed_request() {
        let status = |bytes: &[u8]| OcspResponse::from_der(bytes).unwrap().response_status;
        let internal = [0x30, 0x03, 0x0A, 0x01, 0x02];
        assert_eq!(status(&internal), OcspResponseStatus::InternalError);
        let malformed = unsuccessful(OcspResponseStatus::MalformedRequest)
            .to_der()
            .unwrap();
        assert_eq!(malformed, [0x30, 0x03, 0x0A, 0x01, 0x01]);
    }
}
