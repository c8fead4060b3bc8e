//! In-app, end-to-end encrypted: the payload is sealed on hand-over to
//! every active device of the recipient that enrolled an X25519 agreement
//! key, and only the ciphertexts are stored, in the device inbox
//! (`ladder_store::inbox`), for each device to fetch with a request signed
//! by its own Ed25519 key.
//!
//! Sealing sits behind the small [`Sealer`] interface so that MLS (RFC 9420)
//! can replace it for two-way threads. The implementation here is [`Hpke`]:
//! RFC 9180 base mode with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
//! ChaCha20-Poly1305, one single-shot encryption per device. The associated
//! data is the canonical encoding of a [`Binding`] — tenant, thread,
//! message, assurance and expiry — so a ciphertext moved to another thread
//! or message, or shown with another label, does not open.
//!
//! The device side ([`Sealer::open`], [`generate_agreement_key`],
//! [`device_request_signing_bytes`]) lives here too, pure and without I/O,
//! so the server and the CLI's device client share one definition.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use ladder_core::{AssuranceLevel, Channel};
use ladder_store::{Store, inbox};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Accepted, Adapter, BoxFuture, Channels, Content, DeliveryError, Dispatch, Revoked};

type Kem = X25519HkdfSha256;
type Kdf = HkdfSha256;
type Aead = ChaCha20Poly1305;

/// The HPKE suite's name, as the device inbox API reports it.
pub const HPKE_SUITE: &str = "hpke-base-x25519-hkdf-sha256-chacha20poly1305";

/// HPKE `info`: domain separation for ladder's in-app payloads.
const INFO: &[u8] = b"ladder in-app payload v1";

/// Prefix of the associated data.
const AAD_CONTEXT: &[u8] = b"ladder in-app aad v1\n";

/// Prefix of the bytes a device signs for an inbox request.
pub const DEVICE_REQUEST_CONTEXT: &str = "ladder device request v1";

/// What a ciphertext is bound to: a device opens it only with these very
/// values beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub tenant_id: String,
    pub thread_id: String,
    pub message_id: String,
    pub assurance: AssuranceLevel,
    /// Unix seconds.
    pub expires_at: i64,
}

impl Binding {
    /// The canonical associated data: a context string, then each text
    /// field as a big-endian u64 length and its UTF-8 bytes (tenant, thread,
    /// message, assurance name), then the expiry as a big-endian i64. Length
    /// prefixes keep field boundaries unambiguous.
    pub fn aad(&self) -> Vec<u8> {
        let fields = [
            self.tenant_id.as_bytes(),
            self.thread_id.as_bytes(),
            self.message_id.as_bytes(),
            self.assurance.as_str().as_bytes(),
        ];
        let mut out = Vec::with_capacity(
            AAD_CONTEXT.len() + fields.iter().map(|f| f.len() + 8).sum::<usize>() + 8,
        );
        out.extend_from_slice(AAD_CONTEXT);
        for f in fields {
            out.extend_from_slice(&u64::try_from(f.len()).unwrap_or(u64::MAX).to_be_bytes());
            out.extend_from_slice(f);
        }
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out
    }
}

/// A payload sealed to one device.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The encapsulated key (HPKE `enc`).
    pub enc: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Sealed(enc {} bytes, ciphertext {} bytes)",
            self.enc.len(),
            self.ciphertext.len()
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the system random number generator failed")]
    Random,
    #[error("the device's agreement key is not a usable X25519 public key")]
    BadDeviceKey,
    #[error("sealing failed")]
    Seal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the encapsulated key is malformed")]
    MalformedEnc,
    #[error("the device's private key is malformed")]
    BadPrivateKey,
    #[error(
        "the ciphertext does not open: not sealed to this device, or moved to another thread or message, or relabelled"
    )]
    Rejected,
}

/// Seals payloads to one device and opens them on it. HPKE today; an MLS
/// group per two-way thread can implement the same interface later.
pub trait Sealer: Send + Sync + std::fmt::Debug {
    /// The scheme's name, stated to devices beside their ciphertexts.
    fn suite(&self) -> &'static str;

    /// Seals `plaintext` to the device whose agreement (public) key is
    /// `device_key`, bound to `binding`.
    fn seal(
        &self,
        device_key: &[u8; 32],
        binding: &Binding,
        plaintext: &[u8],
    ) -> Result<Sealed, SealError>;

    /// Opens, on the device, what [`Sealer::seal`] sealed to it; fails
    /// unless `binding` is exactly what was sealed with.
    fn open(
        &self,
        device_secret: &[u8; 32],
        binding: &Binding,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError>;
}

/// RFC 9180 base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
/// ChaCha20-Poly1305.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hpke;

impl Sealer for Hpke {
    fn suite(&self) -> &'static str {
        HPKE_SUITE
    }

    fn seal(
        &self,
        device_key: &[u8; 32],
        binding: &Binding,
        plaintext: &[u8],
    ) -> Result<Sealed, SealError> {
        let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(device_key)
            .map_err(|_| SealError::BadDeviceKey)?;
        let mut rng = SystemSeededRng::new()?;
        let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
            &OpModeS::Base,
            &pk,
            INFO,
            plaintext,
            &binding.aad(),
            &mut rng,
        )
        .map_err(|e| match e {
            // An all-zero shared secret: a low-order point, not a device key.
            hpke::HpkeError::EncapError => SealError::BadDeviceKey,
            _ => SealError::Seal,
        })?;
        Ok(Sealed {
            enc: enc.to_bytes().to_vec(),
            ciphertext,
        })
    }

    fn open(
        &self,
        device_secret: &[u8; 32],
        binding: &Binding,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(device_secret)
            .map_err(|_| OpenError::BadPrivateKey)?;
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed.enc)
            .map_err(|_| OpenError::MalformedEnc)?;
        hpke::single_shot_open::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &sk,
            &enc,
            INFO,
            &sealed.ciphertext,
            &binding.aad(),
        )
        .map(Zeroizing::new)
        .map_err(|_| OpenError::Rejected)
    }
}

/// A device's X25519 agreement key pair: the private half stays on the
/// device.
pub struct AgreementKey {
    pub secret: Zeroizing<[u8; 32]>,
    pub public: [u8; 32],
}

impl std::fmt::Debug for AgreementKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgreementKey(public {})", hex::encode(self.public))
    }
}

/// A fresh agreement key pair (RFC 9180 DeriveKeyPair over 32 random bytes).
pub fn generate_agreement_key() -> Result<AgreementKey, SealError> {
    let mut ikm = Zeroizing::new([0u8; 32]);
    getrandom::fill(ikm.as_mut_slice()).map_err(|_| SealError::Random)?;
    let (sk, pk) = Kem::derive_keypair(ikm.as_slice());
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(sk.to_bytes().as_slice());
    let mut public = [0u8; 32];
    public.copy_from_slice(pk.to_bytes().as_slice());
    Ok(AgreementKey { secret, public })
}

/// The public agreement key of a private one.
pub fn agreement_public(secret: &[u8; 32]) -> Result<[u8; 32], OpenError> {
    let sk =
        <Kem as hpke::Kem>::PrivateKey::from_bytes(secret).map_err(|_| OpenError::BadPrivateKey)?;
    let mut public = [0u8; 32];
    public.copy_from_slice(Kem::sk_to_pk(&sk).to_bytes().as_slice());
    Ok(public)
}

/// The bytes a device signs (Ed25519, its identity key) for an inbox
/// request: `"ladder device request v1\n{METHOD}\n{path}\n{timestamp}\n{hex
/// sha256(body)}"`, where `path` is the request path with its query string,
/// if any (`/v1/device/inbox?limit=10`), and `timestamp` is Unix seconds.
pub fn device_request_signing_bytes(
    method: &str,
    path: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<u8> {
    format!(
        "{DEVICE_REQUEST_CONTEXT}\n{}\n{path}\n{timestamp}\n{}",
        method.to_ascii_uppercase(),
        hex::encode(Sha256::digest(body))
    )
    .into_bytes()
}

/// HPKE's ephemeral keys come from here: 32 bytes of the operating
/// system's randomness, read fallibly up front, expanded with SHA-256 in
/// counter mode should more be asked for. (hpke's own system RNG panics on
/// failure.)
struct SystemSeededRng {
    seed: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl SystemSeededRng {
    fn new() -> Result<SystemSeededRng, SealError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice()).map_err(|_| SealError::Random)?;
        Ok(SystemSeededRng { seed, counter: 0 })
    }

    fn block(&mut self) -> Zeroizing<[u8; 32]> {
        let mut h = Sha256::new();
        h.update(b"ladder in-app rng\n");
        h.update(self.seed.as_slice());
        h.update(self.counter.to_be_bytes());
        self.counter = self.counter.wrapping_add(1);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(h.finalize().as_slice());
        out
    }
}

impl TryRng for SystemSeededRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(32) {
            let block = self.block();
            for (d, s) in chunk.iter_mut().zip(block.iter()) {
                *d = *s;
            }
        }
        Ok(())
    }
}

impl TryCryptoRng for SystemSeededRng {}

/// The in-app channel: seals and stores, never holds plaintext at rest.
#[derive(Debug)]
pub struct InAppAdapter {
    store: Store,
    sealer: Arc<dyn Sealer>,
}

impl InAppAdapter {
    pub fn new(store: Store, sealer: Arc<dyn Sealer>) -> InAppAdapter {
        InAppAdapter { store, sealer }
    }

    fn permanent(code: &str) -> DeliveryError {
        DeliveryError::Permanent { code: code.into() }
    }

    fn unavailable(_: impl std::fmt::Display) -> DeliveryError {
        DeliveryError::Transient {
            code: "inbox_unavailable".into(),
        }
    }

    async fn deliver(&self, d: &Dispatch, payload: &[u8]) -> Result<Accepted, DeliveryError> {
        let binding = Binding {
            tenant_id: d.tenant_id.clone(),
            thread_id: d.thread_id.clone(),
            message_id: d.message_id.clone(),
            assurance: d.assurance,
            expires_at: d.expires_at,
        };
        let now = unix_now();
        let mut entries = Vec::new();
        for device in &d.to.devices {
            let Some(key) = &device.agreement_key else {
                continue;
            };
            let sealed = match self.sealer.seal(key, &binding, payload) {
                Ok(s) => s,
                // One enrolled key that cannot be sealed to must not keep
                // the message from the recipient's other devices.
                Err(SealError::BadDeviceKey) => continue,
                Err(SealError::Random) => return Err(Self::unavailable("rng")),
                Err(SealError::Seal) => return Err(Self::permanent("in_app_seal_failed")),
            };
            entries.push(inbox::Entry {
                tenant_id: d.tenant_id.clone(),
                device_id: device.id.clone(),
                message_id: d.message_id.clone(),
                thread_id: d.thread_id.clone(),
                assurance: d.assurance.as_str().to_string(),
                expires_at: d.expires_at,
                enc: sealed.enc,
                ciphertext: sealed.ciphertext,
                created_at: now,
                fetched_at: None,
            });
        }
        if entries.is_empty() {
            return Err(Self::permanent("no_in_app_device"));
        }
        let mut tx = self.store.begin().await.map_err(Self::unavailable)?;
        let mut fresh = 0usize;
        for e in &entries {
            if inbox::insert(&mut tx, e).await.map_err(Self::unavailable)? {
                fresh += 1;
            }
        }
        tx.commit().await.map_err(Self::unavailable)?;
        Ok(Accepted {
            provider_ref: d.message_id.clone(),
            duplicate: fresh == 0,
        })
    }
}

impl Adapter for InAppAdapter {
    fn channel(&self) -> Channel {
        Channel::InApp
    }

    fn send<'a>(&'a self, d: &'a Dispatch) -> BoxFuture<'a, Result<Accepted, DeliveryError>> {
        Box::pin(async move {
            match &d.content {
                Content::Payload(p) => self.deliver(d, p).await,
                // The in-app thread is a container; wake-ups go by push.
                Content::Notice(_) => Err(Self::permanent("in_app_takes_no_notice")),
            }
        })
    }

    /// Withdraws the entries no device has fetched yet. Once any device
    /// fetched (or acknowledged) it, the message is with the recipient.
    fn revoke<'a>(
        &'a self,
        d: &'a Dispatch,
        _provider_ref: &'a str,
    ) -> BoxFuture<'a, Result<Revoked, DeliveryError>> {
        Box::pin(async move {
            let mut conn = self
                .store
                .pool()
                .acquire()
                .await
                .map_err(Self::unavailable)?;
            let w = inbox::withdraw(&mut conn, &d.tenant_id, &d.message_id)
                .await
                .map_err(Self::unavailable)?;
            Ok(if w.already_fetched > 0 || w.removed == 0 {
                Revoked::AlreadyDelivered
            } else {
                Revoked::Revoked
            })
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Replaces the sandbox `in_app` adapter with the real one (ladder's own
/// component, so it is always on).
pub fn install(store: &Store, channels: Channels) -> Channels {
    channels.with(Arc::new(InAppAdapter::new(store.clone(), Arc::new(Hpke))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            tenant_id: "ten_1".into(),
            thread_id: "thr_1".into(),
            message_id: "msg_1".into(),
            assurance: AssuranceLevel::E2ee,
            expires_at: 1_900_000_000,
        }
    }

    #[test]
    fn a_sealed_payload_opens_on_its_device_only_with_its_binding() {
        let device = generate_agreement_key().unwrap();
        let other = generate_agreement_key().unwrap();
        let b = binding();
        let sealed = Hpke.seal(&device.public, &b, b"salary 4200").unwrap();
        assert!(
            !sealed
                .ciphertext
                .windows(6)
                .any(|w| w == b"salary".as_slice())
        );
        assert_eq!(
            Hpke.open(&device.secret, &b, &sealed).unwrap().as_slice(),
            b"salary 4200"
        );
        assert_eq!(
            Hpke.open(&other.secret, &b, &sealed),
            Err(OpenError::Rejected)
        );
        let variants = [
            Binding {
                tenant_id: "ten_2".into(),
                ..b.clone()
            },
            Binding {
                thread_id: "thr_2".into(),
                ..b.clone()
            },
            Binding {
                message_id: "msg_2".into(),
                ..b.clone()
            },
            Binding {
                assurance: AssuranceLevel::E2eeAttested,
                ..b.clone()
            },
            Binding {
                expires_at: b.expires_at + 1,
                ..b.clone()
            },
        ];
        for v in variants {
            assert_eq!(
                Hpke.open(&device.secret, &v, &sealed),
                Err(OpenError::Rejected),
                "{v:?}"
            );
        }
    }

    #[test]
    fn each_seal_is_fresh_and_tampering_is_detected() {
        let device = generate_agreement_key().unwrap();
        let b = binding();
        let one = Hpke.seal(&device.public, &b, b"x").unwrap();
        let two = Hpke.seal(&device.public, &b, b"x").unwrap();
        assert_ne!(one.enc, two.enc);
        assert_ne!(one.ciphertext, two.ciphertext);
        let mut bad = one.clone();
        if let Some(byte) = bad.ciphertext.first_mut() {
            *byte ^= 1;
        }
        assert_eq!(
            Hpke.open(&device.secret, &b, &bad),
            Err(OpenError::Rejected)
        );
        let short = Sealed {
            enc: vec![1, 2, 3],
            ciphertext: one.ciphertext.clone(),
        };
        assert_eq!(
            Hpke.open(&device.secret, &b, &short),
            Err(OpenError::MalformedEnc)
        );
    }

    #[test]
    fn field_boundaries_are_unambiguous_in_the_aad() {
        let a = Binding {
            tenant_id: "ab".into(),
            thread_id: "c".into(),
            ..binding()
        };
        let b = Binding {
            tenant_id: "a".into(),
            thread_id: "bc".into(),
            ..binding()
        };
        assert_ne!(a.aad(), b.aad());
    }

    #[test]
    fn public_key_derives_from_the_secret() {
        let k = generate_agreement_key().unwrap();
        assert_eq!(agreement_public(&k.secret).unwrap(), k.public);
    }

    #[test]
    fn a_low_order_point_is_not_a_device_key() {
        let zero = [0u8; 32];
        assert_eq!(
            Hpke.seal(&zero, &binding(), b"x"),
            Err(SealError::BadDeviceKey)
        );
    }

    #[test]
    fn request_signing_bytes_bind_method_path_time_and_body() {
        let s = device_request_signing_bytes("get", "/v1/device/inbox", 42, b"");
        let text = String::from_utf8(s).unwrap();
        assert_eq!(
            text,
            "ladder device request v1\nGET\n/v1/device/inbox\n42\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
