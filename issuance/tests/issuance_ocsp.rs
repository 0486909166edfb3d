//! The OCSP responder and the CRL on the index, in-process: requests built
//! with the crate's own RFC 6960 types, answers decoded and their
//! signatures checked with p256; any bytes at all get an answer, never a
//! panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use der::asn1::{Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};
use proptest::prelude::*;
use sha1::{Digest, Sha1};
use spki::AlgorithmIdentifierOwned;
use vscard_emulator::CardRng;
use vscard_issuance::revocation::ocsp::{
    BasicOcspResponse, CertId, CertStatus, OCSP_NONCE, OcspRequest, OcspResponse,
    OcspResponseStatus, Request, SHA1, TbsRequest,
};
use vscard_issuance::revocation::{
    CertificateIndex, OcspResponder, ResponseCache, RevocationReason, serial_hex,
};
use vscard_issuance::{
    CardProfile, CertificateValidity, Environment, Pki, SlotAlgorithms, issue_card,
};
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// A PKI with one P-256 card recorded in its index.
fn pki_with_card(state: &std::path::Path) -> (Pki, Vec<Certificate>) {
    let pki = Pki::open_or_create(state, &Environment::Sandbox, &mut CardRng::from_u64(7)).unwrap();
    let profile = CardProfile {
        slots: SlotAlgorithms::ALL_P256,
        ..CardProfile::demo()
    };
    let validity = CertificateValidity::years_from(now(), 2).unwrap();
    let issued = issue_card(
        pki.sub(),
        &profile,
        validity,
        &mut CardRng::from_u64(8),
        |_, _| {},
    )
    .unwrap();
    let certificates: Vec<Certificate> = issued.iter().map(|s| s.certificate.clone()).collect();
    pki.record_issued(
        &state.join("card.json"),
        issued.iter().map(|slot| (slot.slot, &slot.certificate)),
    )
    .unwrap();
    (pki, certificates)
}

fn cert_id(pki: &Pki, serial: &[u8]) -> CertId {
    let sub = pki.sub().certificate().tbs_certificate();
    CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: SHA1,
            parameters: Some(der::Any::from(Null)),
        },
        issuer_name_hash: OctetString::new(Sha1::digest(sub.subject().to_der().unwrap()).to_vec())
            .unwrap(),
        issuer_key_hash: OctetString::new(
            Sha1::digest(sub.subject_public_key_info().subject_public_key.raw_bytes()).to_vec(),
        )
        .unwrap(),
        serial_number: SerialNumber::new(serial).unwrap(),
    }
}

fn request(ids: Vec<CertId>, nonce: Option<&[u8]>) -> Vec<u8> {
    let extensions = nonce.map(|value| {
        vec![Extension {
            extn_id: OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(OctetString::new(value).unwrap().to_der().unwrap())
                .unwrap(),
        }]
    });
    OcspRequest {
        tbs_request: TbsRequest {
            version: Default::default(),
            requestor_name: None,
            request_list: ids
                .into_iter()
                .map(|req_cert| Request {
                    req_cert,
                    single_request_extensions: None,
                })
                .collect(),
            request_extensions: extensions,
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

fn decode_basic(answer: &[u8]) -> BasicOcspResponse {
    let response = OcspResponse::from_der(answer).unwrap();
    assert_eq!(response.response_status, OcspResponseStatus::Successful);
    let bytes = response.response_bytes.unwrap();
    assert_eq!(
        bytes.response_type,
        ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1")
    );
    BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap()
}

#[test]
fn answers_good_revoked_and_unknown_signed_by_the_delegated_responder() {
    let state = tempfile::tempdir().unwrap();
    let (pki, certificates) = pki_with_card(state.path());
    let responder = pki.ocsp_responder(now()).unwrap();
    let revoked = &certificates[1];
    pki.update_index(|index| {
        index
            .revoke(
                &serial_hex(revoked),
                now(),
                RevocationReason::AffiliationChanged,
            )
            .map_err(Into::into)
    })
    .unwrap()
    .unwrap();
    let index = pki.index().unwrap();
    let serial = |c: &Certificate| c.tbs_certificate().serial_number().as_bytes().to_vec();
    let mut other = cert_id(&pki, &serial(&certificates[0]));
    other.issuer_key_hash = OctetString::new(vec![0; 20]).unwrap();
    let ids = vec![
        cert_id(&pki, &serial(&certificates[0])),
        cert_id(&pki, &serial(revoked)),
        cert_id(&pki, &[0x12, 0x34]),
        other,
    ];
    let answer = responder.respond(&request(ids.clone(), Some(b"once")), &index, now());
    let basic = decode_basic(&answer);
    let data = &basic.tbs_response_data;
    let statuses: Vec<&CertStatus> = data.responses.iter().map(|r| &r.cert_status).collect();
    assert!(matches!(statuses[0], CertStatus::Good(_)));
    let CertStatus::Revoked(info) = statuses[1] else {
        panic!("{:?}", statuses[1]);
    };
    assert_eq!(
        info.revocation_reason,
        Some(x509_cert::ext::pkix::CrlReason::AffiliationChanged)
    );
    assert_eq!(info.revocation_time.to_system_time(), now());
    assert!(matches!(statuses[2], CertStatus::Unknown(_)));
    assert!(matches!(statuses[3], CertStatus::Unknown(_)));
    for (response, id) in data.responses.iter().zip(&ids) {
        assert_eq!(&response.cert_id, id);
    }
    // The nonce comes back as it was sent.
    let extensions = data.response_extensions.as_ref().unwrap();
    assert_eq!(extensions[0].extn_id, OCSP_NONCE);
    assert_eq!(
        extensions[0].extn_value.as_bytes(),
        OctetString::new(&b"once"[..]).unwrap().to_der().unwrap()
    );
    // Signed by the responder certificate it carries, which the Sub CA
    // issued for OCSP signing.
    let responder_certificate = &basic.certs.as_ref().unwrap()[0];
    vscard_issuance::verify_issued_by(responder_certificate, pki.sub().certificate()).unwrap();
    let key = VerifyingKey::from_sec1_bytes(
        responder_certificate
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes(),
    )
    .unwrap();
    let signature = DerSignature::from_bytes(basic.signature.raw_bytes()).unwrap();
    key.verify(&data.to_der().unwrap(), &signature).unwrap();
    let mut tampered = data.clone();
    tampered.responses.swap(0, 1);
    assert!(key.verify(&tampered.to_der().unwrap(), &signature).is_err());

    // Without a nonce, no response extensions.
    let answer = responder.respond(&request(ids[..1].to_vec(), None), &index, now());
    assert_eq!(
        decode_basic(&answer).tbs_response_data.response_extensions,
        None
    );
}

#[test]
fn malformed_and_empty_requests_are_refused_by_status() {
    let state = tempfile::tempdir().unwrap();
    let (pki, _) = pki_with_card(state.path());
    let responder = pki.ocsp_responder(now()).unwrap();
    let index = pki.index().unwrap();
    for bytes in [
        &b""[..],
        b"\x30\x00",
        b"GET / HTTP/1.1",
        &request(vec![], None),
    ] {
        let answer = OcspResponse::from_der(&responder.respond(bytes, &index, now())).unwrap();
        assert_eq!(answer.response_status, OcspResponseStatus::MalformedRequest);
        assert_eq!(answer.response_bytes, None);
    }
}

#[test]
fn the_crl_lists_revoked_certificates_with_their_reasons_and_numbers_grow() {
    let state = tempfile::tempdir().unwrap();
    let (pki, certificates) = pki_with_card(state.path());
    let first = pki.make_crl(now()).unwrap();
    assert_eq!(first.tbs_cert_list.revoked_certificates, None);
    pki.update_index(|index| {
        index
            .revoke(
                &serial_hex(&certificates[0]),
                now(),
                RevocationReason::KeyCompromise,
            )
            .map_err(Into::into)
    })
    .unwrap()
    .unwrap();
    let second = pki.make_crl(now() + Duration::from_secs(60)).unwrap();
    let revoked = second.tbs_cert_list.revoked_certificates.as_ref().unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        &revoked[0].serial_number,
        certificates[0].tbs_certificate().serial_number()
    );
    let number = |crl: &x509_cert::crl::CertificateList| {
        crl.tbs_cert_list.crl_extensions.as_ref().unwrap()[1]
            .extn_value
            .as_bytes()
            .to_vec()
    };
    assert_eq!(number(&first), [0x02, 0x01, 0x01]);
    assert_eq!(number(&second), [0x02, 0x01, 0x02]);
    assert_eq!(pki.last_crl().unwrap().unwrap(), second);
    // Revoking again keeps the first reason.
    let again = pki
        .update_index(|index| {
            index
                .revoke(
                    &serial_hex(&certificates[0]),
                    now(),
                    RevocationReason::Superseded,
                )
                .map_err(Into::into)
        })
        .unwrap();
    assert_eq!(
        again,
        Some(vscard_issuance::revocation::Revocation::AlreadyRevoked(
            RevocationReason::KeyCompromise
        ))
    );
}

#[test]
fn answers_without_a_nonce_are_reused_while_fresh_and_the_index_is_the_same() {
    let state = tempfile::tempdir().unwrap();
    let (pki, certificates) = pki_with_card(state.path());
    let responder = pki.ocsp_responder(now()).unwrap();
    let index = pki.index().unwrap();
    let id = cert_id(
        &pki,
        certificates[0].tbs_certificate().serial_number().as_bytes(),
    );
    let plain = request(vec![id.clone()], None);
    let with_nonce = request(vec![id], Some(b"n1"));
    let mut cache = ResponseCache::new(Duration::from_secs(60), 8);
    let second = Duration::from_secs(1);
    let produced = |answer: &[u8]| decode_basic(answer).tbs_response_data.produced_at;
    let first = cache.respond(&responder, &plain, &index, 1, now());
    // The same bytes a second later: the kept answer.
    assert_eq!(
        cache.respond(&responder, &plain, &index, 1, now() + second),
        first
    );
    // A nonce: signed afresh every time.
    let a = cache.respond(&responder, &with_nonce, &index, 1, now());
    let b = cache.respond(&responder, &with_nonce, &index, 1, now() + second);
    assert_ne!(produced(&a), produced(&b));
    // A changed index (new generation), or an old answer: a new one.
    let changed = cache.respond(&responder, &plain, &index, 2, now() + second);
    assert_ne!(produced(&changed), produced(&first));
    let later = now() + Duration::from_secs(61);
    assert_ne!(
        produced(&cache.respond(&responder, &plain, &index, 2, later)),
        produced(&changed)
    );
}

#[test]
fn concurrent_issuers_lose_no_index_entry() {
    let state = tempfile::tempdir().unwrap();
    let (pki, _) = pki_with_card(state.path());
    let pki = std::sync::Arc::new(pki);
    // Eight writers at once, each a read-modify-write of index.json under
    // index.lock adding four entries of its own.
    let writers: Vec<_> = (0..8u8)
        .map(|writer| {
            let pki = std::sync::Arc::clone(&pki);
            let template = pki.index().unwrap().certificates[0].clone();
            std::thread::spawn(move || {
                for n in 0..4u8 {
                    pki.update_index(|index| {
                        let mut entry = template.clone();
                        entry.serial = format!("40{writer:02X}{n:02X}");
                        index.certificates.push(entry);
                        Ok(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(pki.index().unwrap().certificates.len(), 4 + 8 * 4);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_get_an_answer(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        type Fixture = (tempfile::TempDir, OcspResponder, CertificateIndex);
        static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
        let (_, responder, index) = FIXTURE.get_or_init(|| {
            let state = tempfile::tempdir().unwrap();
            let (pki, _) = pki_with_card(state.path());
            let responder = pki.ocsp_responder(now()).unwrap();
            let index = pki.index().unwrap();
            (state, responder, index)
        });
        let answer = responder.respond(&bytes, index, now());
        prop_assert!(OcspResponse::from_der(&answer).is_ok());
    }
}
