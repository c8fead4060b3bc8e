//! The capability handshake: how a device proves its state.
//!
//! The server issues a one-time [`Challenge`]; the enrolled device signs
//! (challenge, report) with its Ed25519 device key; [`verify`] checks the
//! signature against the enrolled key and the challenge against what was
//! issued, and only then yields a [`VerifiedReport`] — the one way to record
//! evidence with source `signed_device_report`. Replayed, expired, unsigned
//! or mis-signed reports are rejected with a [`HandshakeRejection`] the
//! caller audits; nothing changes.
//!
//! Keeping challenges one-time (removing a challenge once used) is the
//! caller's job: `verify` takes the challenge the caller found outstanding,
//! or `None` when there was none — which is how a replay shows up.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::assurance::{E2eeState, EvidenceSource, Transport};
use crate::evidence::{ClientInfo, DeviceEvidence, TransportEvidence};
use crate::time::Timestamp;

/// Domain separation for the signed bytes.
const CONTEXT: &[u8] = b"ladder capability handshake v1\n";

/// A one-time challenge issued to one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// 32 random bytes, hex; the caller generates them.
    pub nonce: String,
    pub device: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What a device says about one transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedTransport {
    pub reachable: bool,
    pub e2ee: E2eeState,
    #[serde(default)]
    pub attested: bool,
}

/// The body a device signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    pub device: String,
    pub nonce: String,
    pub client: ClientInfo,
    pub transports: BTreeMap<Transport, ReportedTransport>,
}

impl DeviceReport {
    /// The exact bytes signed: a context string, then canonical JSON (struct
    /// fields in declaration order, maps sorted).
    pub fn signing_bytes(&self) -> Result<Vec<u8>, HandshakeRejection> {
        let body = serde_json::to_vec(self).map_err(|_| HandshakeRejection::Unencodable)?;
        let mut out = CONTEXT.to_vec();
        out.extend(body);
        Ok(out)
    }
}

/// A report with its signature (64 bytes, hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReport {
    pub report: DeviceReport,
    pub signature: String,
}

/// Signs a report, as the device client does.
pub fn sign(key: &SigningKey, report: DeviceReport) -> Result<SignedReport, HandshakeRejection> {
    let sig = key.sign(&report.signing_bytes()?);
    Ok(SignedReport {
        report,
        signature: hex(&sig.to_bytes()),
    })
}

/// Why a handshake was refused. Each is hostile or broken input, never an
/// internal error, and each changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum HandshakeRejection {
    #[error("challenge `{nonce}` was never issued or was already used (replay)")]
    UnknownChallenge { nonce: String },
    #[error("challenge expired at {expired_at}")]
    ChallengeExpired { expired_at: Timestamp },
    #[error("challenge was issued to device `{issued_to}`, not `{device}`")]
    WrongDevice { issued_to: String, device: String },
    #[error("device `{device}` is revoked")]
    DeviceRevoked { device: String },
    #[error("the enrolled key of device `{device}` is not a valid Ed25519 public key")]
    BadEnrolledKey { device: String },
    #[error("the report is unsigned; only reports signed by the enrolled device key are accepted")]
    Unsigned,
    #[error("signature is not 64 hex-encoded bytes")]
    MalformedSignature,
    #[error("the report cannot be encoded canonically")]
    Unencodable,
    #[error("signature does not verify against the enrolled key of device `{device}`")]
    BadSignature { device: String },
}

impl HandshakeRejection {
    pub fn code(&self) -> &'static str {
        match self {
            HandshakeRejection::UnknownChallenge { .. } => "unknown_challenge",
            HandshakeRejection::ChallengeExpired { .. } => "challenge_expired",
            HandshakeRejection::WrongDevice { .. } => "wrong_device",
            HandshakeRejection::DeviceRevoked { .. } => "device_revoked",
            HandshakeRejection::BadEnrolledKey { .. } => "bad_enrolled_key",
            HandshakeRejection::Unsigned => "unsigned",
            HandshakeRejection::MalformedSignature => "malformed_signature",
            HandshakeRejection::Unencodable => "unencodable",
            HandshakeRejection::BadSignature { .. } => "bad_signature",
        }
    }
}

/// A report whose signature and challenge checked out. Only [`verify`]
/// makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReport {
    report: DeviceReport,
    at: Timestamp,
}

impl VerifiedReport {
    pub fn report(&self) -> &DeviceReport {
        &self.report
    }

    /// Records the report as the device's evidence. A report is its
    /// client's whole signed state on the device: that client's signed
    /// evidence it does not repeat is dropped (as is signed evidence naming
    /// no client), so a partial re-handshake cannot carry older claims, or an
    /// older version's claims, forward. Another client's signed evidence and
    /// provider observations are kept.
    pub fn apply(&self, device: &mut DeviceEvidence) {
        let client = &self.report.client;
        device.client = Some(client.clone());
        device.transports.retain(|_, t| {
            t.source != EvidenceSource::SignedDeviceReport
                || t.client
                    .as_ref()
                    .is_some_and(|c| !c.name.eq_ignore_ascii_case(&client.name))
        });
        for (t, r) in &self.report.transports {
            device.transports.insert(
                *t,
                TransportEvidence {
                    client: Some(client.clone()),
                    reachable: r.reachable,
                    e2ee: r.e2ee,
                    attested: r.attested,
                    source: EvidenceSource::SignedDeviceReport,
                    observed_at: self.at,
                },
            );
        }
    }
}

/// Verifies a signed report. `outstanding` is the challenge the caller found
/// for the report's nonce (and removed, so it cannot be used twice).
pub fn verify(
    outstanding: Option<&Challenge>,
    enrolled_key: &[u8; 32],
    device: &DeviceEvidence,
    signed: &SignedReport,
    now: Timestamp,
) -> Result<VerifiedReport, HandshakeRejection> {
    let report = &signed.report;
    let challenge = outstanding
        .filter(|c| c.nonce == report.nonce)
        .ok_or_else(|| HandshakeRejection::UnknownChallenge {
            nonce: report.nonce.clone(),
        })?;
    if challenge.device != report.device || device.id != report.device {
        return Err(HandshakeRejection::WrongDevice {
            issued_to: challenge.device.clone(),
            device: report.device.clone(),
        });
    }
    if now >= challenge.expires_at {
        return Err(HandshakeRejection::ChallengeExpired {
            expired_at: challenge.expires_at,
        });
    }
    if device.is_revoked() {
        return Err(HandshakeRejection::DeviceRevoked {
            device: device.id.to_string(),
        });
    }
    let key =
        VerifyingKey::from_bytes(enrolled_key).map_err(|_| HandshakeRejection::BadEnrolledKey {
            device: device.id.to_string(),
        })?;
    if signed.signature.is_empty() {
        return Err(HandshakeRejection::Unsigned);
    }
    let sig_bytes: [u8; 64] = unhex(&signed.signature)
        .and_then(|b| b.try_into().ok())
        .ok_or(HandshakeRejection::MalformedSignature)?;
    let sig = Signature::from_bytes(&sig_bytes);
    key.verify_strict(&report.signing_bytes()?, &sig)
        .map_err(|_| HandshakeRejection::BadSignature {
            device: device.id.to_string(),
        })?;
    Ok(VerifiedReport {
        report: report.clone(),
        at: now,
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::PlatformLabels;

    fn setup() -> (SigningKey, DeviceEvidence, Challenge, DeviceReport) {
        let key = SigningKey::from_bytes(&[7; 32]);
        let device = DeviceEvidence::new("phone", PlatformLabels::default(), Timestamp(0));
        let challenge = Challenge {
            nonce: "ab".repeat(32),
            device: "phone".into(),
            issued_at: Timestamp(100),
            expires_at: Timestamp(400),
        };
        let report = DeviceReport {
            device: "phone".into(),
            nonce: challenge.nonce.clone(),
            client: ClientInfo {
                name: "acme-app".into(),
                version: "5.3".parse().unwrap(),
                policy_revision: 4,
            },
            transports: BTreeMap::from([(
                Transport::InApp,
                ReportedTransport {
                    reachable: true,
                    e2ee: E2eeState::Verified,
                    attested: true,
                },
            )]),
        };
        (key, device, challenge, report)
    }

    #[test]
    fn a_correctly_signed_report_verifies_and_records_signed_evidence() {
        let (key, mut device, challenge, report) = setup();
        let signed = sign(&key, report).unwrap();
        let pk = key.verifying_key().to_bytes();
        let v = verify(Some(&challenge), &pk, &device, &signed, Timestamp(200)).unwrap();
        v.apply(&mut device);
        let ev = &device.transports[&Transport::InApp];
        assert_eq!(ev.source, EvidenceSource::SignedDeviceReport);
        assert_eq!(ev.observed_at, Timestamp(200));
        assert_eq!(device.client.unwrap().name, "acme-app");
    }

    #[test]
    fn a_report_replaces_the_devices_whole_signed_state() {
        let (key, mut device, challenge, mut report) = setup();
        report.transports.insert(
            Transport::Rcs,
            ReportedTransport {
                reachable: true,
                e2ee: E2eeState::Verified,
                attested: false,
            },
        );
        let pk = key.verifying_key().to_bytes();
        let first = sign(&key, report.clone()).unwrap();
        verify(Some(&challenge), &pk, &device, &first, Timestamp(200))
            .unwrap()
            .apply(&mut device);
        // A provider observation survives; signed claims not repeated do not.
        device.transports.insert(
            Transport::Sms,
            TransportEvidence {
                client: None,
                reachable: true,
                e2ee: E2eeState::Absent,
                attested: false,
                source: EvidenceSource::ProviderCheck,
                observed_at: Timestamp(250),
            },
        );
        report.transports.remove(&Transport::Rcs);
        let second = sign(&key, report).unwrap();
        verify(Some(&challenge), &pk, &device, &second, Timestamp(300))
            .unwrap()
            .apply(&mut device);
        assert!(
            !device.transports.contains_key(&Transport::Rcs),
            "old signed RCS claim carried forward"
        );
        assert!(device.transports.contains_key(&Transport::Sms));
        assert_eq!(
            device.transports[&Transport::InApp].observed_at,
            Timestamp(300)
        );
    }

    #[test]
    fn two_clients_on_one_device_neither_erase_nor_vouch_for_each_other() {
        let (key, mut device, challenge, report) = setup();
        let pk = key.verifying_key().to_bytes();
        let app = sign(&key, report.clone()).unwrap();
        verify(Some(&challenge), &pk, &device, &app, Timestamp(200))
            .unwrap()
            .apply(&mut device);
        let mut rcs_client = report.clone();
        rcs_client.client = ClientInfo {
            name: "google-messages".into(),
            version: "2026.1".parse().unwrap(),
            policy_revision: 4,
        };
        rcs_client.transports = BTreeMap::from([(
            Transport::Rcs,
            ReportedTransport {
                reachable: true,
                e2ee: E2eeState::Verified,
                attested: false,
            },
        )]);
        let other = sign(&key, rcs_client).unwrap();
        verify(Some(&challenge), &pk, &device, &other, Timestamp(300))
            .unwrap()
            .apply(&mut device);
        let of = |t: Transport| {
            device.transports[&t]
                .client
                .as_ref()
                .map(|c| c.name.clone())
        };
        assert_eq!(of(Transport::InApp).as_deref(), Some("acme-app"));
        assert_eq!(of(Transport::Rcs).as_deref(), Some("google-messages"));
    }

    #[test]
    fn unsigned_reports_are_rejected() {
        let (key, device, challenge, report) = setup();
        let unsigned = SignedReport {
            report,
            signature: String::new(),
        };
        let pk = key.verifying_key().to_bytes();
        assert_eq!(
            verify(Some(&challenge), &pk, &device, &unsigned, Timestamp(200))
                .unwrap_err()
                .code(),
            "unsigned"
        );
    }

    #[test]
    fn forged_tampered_replayed_and_expired_reports_are_rejected() {
        let (key, device, challenge, report) = setup();
        let pk = key.verifying_key().to_bytes();
        let forged = sign(&SigningKey::from_bytes(&[8; 32]), report.clone()).unwrap();
        assert_eq!(
            verify(Some(&challenge), &pk, &device, &forged, Timestamp(200))
                .unwrap_err()
                .code(),
            "bad_signature"
        );
        let mut tampered = sign(&key, report.clone()).unwrap();
        tampered.report.transports.insert(
            Transport::Rcs,
            ReportedTransport {
                reachable: true,
                e2ee: E2eeState::Verified,
                attested: false,
            },
        );
        assert_eq!(
            verify(Some(&challenge), &pk, &device, &tampered, Timestamp(200))
                .unwrap_err()
                .code(),
            "bad_signature"
        );
        let good = sign(&key, report).unwrap();
        assert_eq!(
            verify(None, &pk, &device, &good, Timestamp(200))
                .unwrap_err()
                .code(),
            "unknown_challenge"
        );
        assert_eq!(
            verify(Some(&challenge), &pk, &device, &good, Timestamp(400))
                .unwrap_err()
                .code(),
            "challenge_expired"
        );
        let mut bad_hex = good.clone();
        bad_hex.signature = "zz".into();
        assert_eq!(
            verify(Some(&challenge), &pk, &device, &bad_hex, Timestamp(200))
                .unwrap_err()
                .code(),
            "malformed_signature"
        );
    }
}
