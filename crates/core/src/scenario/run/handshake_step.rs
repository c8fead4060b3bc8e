//! Handshake steps: sign (or forge, replay, delay, leave unsigned) a device
//! report over a fresh challenge, run it through the real verification, and
//! elevate the thread's floor when it completes a fresh set.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use super::{CHALLENGE_TTL, Sim, StepResult, device_key, mismatch};
use crate::assurance::{E2eeState, Transport};
use crate::evidence::ClientInfo;
use crate::handshake::{self, Challenge, DeviceReport, ReportedTransport, SignedReport};
use crate::scenario::{Delivery, HandshakeStep, Reported, ScenarioStep};
use crate::thread::ElevationRefused;
use crate::time::Duration;
use crate::version::PlatformVersion;

impl Sim<'_> {
    pub(super) fn handshake(&mut self, step: &ScenarioStep, h: &HandshakeStep) -> StepResult {
        let now = self.now;
        let policy_revision = h.policy_revision.unwrap_or(self.policy.revision());
        let d = self.device_even_revoked(step, &h.device)?;
        let client = ClientInfo {
            name: h
                .client
                .clone()
                .or(d.labels.client.clone())
                .unwrap_or_else(|| "ladder-sim".into()),
            version: h
                .client_version
                .clone()
                .or(d.labels.client_version.clone())
                .unwrap_or_else(|| PlatformVersion::from_parts(&[1, 0])),
            policy_revision,
        };
        let transports: BTreeMap<Transport, ReportedTransport> = h
            .transports
            .iter()
            .map(|(t, r)| {
                let rt = match r {
                    Reported::E2ee(e) => ReportedTransport {
                        reachable: true,
                        e2ee: *e,
                        attested: h.attested,
                    },
                    Reported::Reachable => ReportedTransport {
                        reachable: true,
                        e2ee: E2eeState::Absent,
                        attested: false,
                    },
                    Reported::Unreachable => ReportedTransport {
                        reachable: false,
                        e2ee: E2eeState::Unknown,
                        attested: false,
                    },
                };
                (*t, rt)
            })
            .collect();

        self.nonces += 1;
        let nonce = handshake::hex(&Sha256::digest(format!(
            "ladder simulate nonce {}",
            self.nonces
        )));
        let challenge = Challenge {
            nonce: nonce.clone(),
            device: h.device.clone(),
            issued_at: now,
            expires_at: now.plus(CHALLENGE_TTL),
        };
        let report = DeviceReport {
            device: h.device.clone(),
            nonce,
            client,
            transports,
        };
        let key = self
            .keys
            .get(&h.device)
            .cloned()
            .unwrap_or_else(|| device_key(&h.device, "device key"));
        let sign = |key: &SigningKey, report| {
            handshake::sign(key, report)
                .map_err(|e| mismatch(step, "handshake", "a report the device can sign", e))
        };
        let (signed, outstanding, at) = match h.delivery {
            Delivery::Forged => (
                sign(&device_key(&h.device, "forger"), report)?,
                Some(&challenge),
                now,
            ),
            Delivery::Replay => match self.last_signed.get(&h.device) {
                Some(prev) => (prev.clone(), None, now),
                None => {
                    return Err(mismatch(
                        step,
                        "replay",
                        "an earlier signed handshake to replay",
                        "none",
                    ));
                }
            },
            Delivery::Late => (
                sign(&key, report)?,
                Some(&challenge),
                now.plus(CHALLENGE_TTL).plus(Duration(1)),
            ),
            Delivery::Unsigned => (
                SignedReport {
                    report,
                    signature: String::new(),
                },
                Some(&challenge),
                now,
            ),
            Delivery::Signed => (sign(&key, report)?, Some(&challenge), now),
        };
        let pk = key.verifying_key().to_bytes();
        let d = self.device_even_revoked(step, &h.device)?;
        match handshake::verify(outstanding, &pk, d, &signed, at) {
            Ok(verified) => {
                if h.delivery != Delivery::Signed {
                    return Err(mismatch(
                        step,
                        "handshake",
                        "rejected",
                        "accepted: a forged, replayed or late report got through",
                    ));
                }
                if let Some(code) = &h.expect_rejected {
                    return Err(mismatch(step, "expect_rejected", code, "accepted"));
                }
                verified.apply(d);
                self.last_signed.insert(h.device.clone(), signed);
                self.event(
                    step.number,
                    format!("handshake from `{}` verified", h.device),
                );
                self.observe_floor(step.number);
                self.try_elevate(step.number);
            }
            Err(rejection) => {
                let code = rejection.code();
                match &h.expect_rejected {
                    Some(want) if want != code => {
                        return Err(mismatch(step, "expect_rejected", want, code));
                    }
                    None if h.delivery == Delivery::Signed => {
                        return Err(mismatch(
                            step,
                            "handshake",
                            "accepted",
                            format!("rejected: {rejection}"),
                        ));
                    }
                    _ => {}
                }
                self.event(
                    step.number,
                    format!(
                        "handshake from `{}` rejected and audited: {rejection} [{code}]",
                        h.device
                    ),
                );
            }
        }
        Ok(())
    }

    fn try_elevate(&mut self, n: usize) {
        let Some(thread) = &self.thread else { return };
        let overrides = self.all_overrides();
        match thread.elevate(
            self.policy.evidence(),
            &self.recipient,
            &overrides,
            self.now,
        ) {
            Ok(e) => {
                let mut t = thread.clone();
                t.apply_elevation(&e);
                self.thread = Some(t);
                self.event(
                    n,
                    format!(
                        "thread floor elevated {} -> {} after fresh handshakes from {}",
                        e.from,
                        e.to,
                        e.devices
                            .iter()
                            .map(|d| d.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            Err(ElevationRefused::NotHigher { .. }) => {}
            Err(refused) => self.event(n, format!("thread floor not elevated: {refused}")),
        }
    }
}
