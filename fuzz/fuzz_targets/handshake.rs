//! Signed handshake reports (`ladder_core::handshake::verify`), as the
//! server reads them: JSON from the request body, checked against the
//! outstanding challenge and the enrolled key.
//!
//! The first byte picks the mode: even, the report is verified with the
//! signature it carries (forgeries must be refused); odd, it is re-signed
//! with the enrolled key first, so the fuzzer gets past the signature to
//! the checks behind it. Whatever is accepted must name the challenge's
//! nonce and device, and carry a signature that verifies.
#![no_main]

use ed25519_dalek::{Signature, SigningKey, Verifier as _};
use ladder_core::Timestamp;
use ladder_core::evidence::{DeviceEvidence, PlatformLabels};
use ladder_core::handshake::{self, Challenge, SignedReport};
use libfuzzer_sys::fuzz_target;

const NONCE: &str = "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000";
const DEVICE: &str = "dev_fuzz";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let Ok(mut signed) = serde_json::from_slice::<SignedReport>(body) else {
        return;
    };
    let key = SigningKey::from_bytes(&[7; 32]);
    if mode % 2 == 1 {
        match handshake::sign(&key, signed.report.clone()) {
            Ok(s) => signed = s,
            Err(_) => return,
        }
    }
    let challenge = Challenge {
        nonce: NONCE.to_string(),
        device: DEVICE.to_string(),
        issued_at: Timestamp(1_000),
        expires_at: Timestamp(1_120),
    };
    let device = DeviceEvidence::new(DEVICE, PlatformLabels::default(), Timestamp(500));
    let enrolled = key.verifying_key().to_bytes();
    let outstanding = (mode & 2 == 0).then_some(&challenge);
    let now = Timestamp(1_000 + i64::from(mode >> 2));
    let Ok(verified) = handshake::verify(outstanding, &enrolled, &device, &signed, now) else {
        return;
    };
    let report = verified.report();
    assert_eq!(report.nonce, NONCE);
    assert_eq!(report.device, DEVICE);
    assert!(now < challenge.expires_at);
    let sig: [u8; 64] = (0..signed.signature.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&signed.signature[i..i + 2], 16).expect("hex"))
        .collect::<Vec<u8>>()
        .try_into()
        .expect("64 bytes");
    let bytes = report.signing_bytes().expect("an accepted report encodes");
    key.verifying_key()
        .verify(&bytes, &Signature::from_bytes(&sig))
        .expect("an accepted report's signature verifies");
});
