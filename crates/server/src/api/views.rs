//! Wire types of recipients, devices, threads and challenges: how the API
//! shows them wherever they appear (their own routes, a message's status,
//! the thread history). Contact points show as whether one is on file,
//! never the address; keys as hex.

use ladder_core::AssuranceLevel;
use ladder_store::recipients::Device;
use ladder_store::threads::Thread;
use serde::Serialize;
use utoipa::ToSchema;

/// A thread: its floor (what the recipient's devices verifiably support)
/// and its label (what the recipient was last shown).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Thread)]
pub struct ThreadView {
    pub id: String,
    /// The recipient id.
    pub recipient: String,
    pub name: String,
    #[schema(value_type = String)]
    pub floor: AssuranceLevel,
    /// When the floor was last set (Unix seconds).
    #[schema(value_type = i64)]
    pub floor_since: ladder_core::Timestamp,
    /// The assurance of the last message delivered in the thread.
    #[schema(value_type = Option<String>)]
    pub last_delivered_assurance: Option<AssuranceLevel>,
    /// The floor, as a label people read.
    pub label: String,
    pub updated_at: i64,
}

impl ThreadView {
    pub fn of(t: &Thread) -> ThreadView {
        ThreadView {
            id: t.id.clone(),
            recipient: t.recipient_id.clone(),
            name: t.name.clone(),
            floor: t.floor.floor,
            floor_since: t.floor.since,
            last_delivered_assurance: t.floor.label,
            label: t.floor.floor.label().to_string(),
            updated_at: t.updated_at,
        }
    }
}

/// An enrolled device with its evidence per transport.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Device)]
pub struct DeviceView {
    pub id: String,
    /// The recipient id.
    pub recipient: String,
    /// The Ed25519 identity key, hex.
    pub identity_key: String,
    /// The X25519 key in-app messages are sealed to, hex.
    pub agreement_key: Option<String>,
    #[schema(value_type = Object)]
    pub labels: ladder_core::evidence::PlatformLabels,
    #[schema(value_type = i64)]
    pub enrolled_at: ladder_core::Timestamp,
    #[schema(value_type = Option<i64>)]
    pub revoked_at: Option<ladder_core::Timestamp>,
    /// The client of the last accepted signed report.
    #[schema(value_type = Option<Object>)]
    pub client: Option<ladder_core::evidence::ClientInfo>,
    /// Per transport (`rcs`, `in_app`, `sms`, `push`): the latest evidence.
    #[schema(value_type = Object)]
    pub transports: std::collections::BTreeMap<
        ladder_core::Transport,
        ladder_core::evidence::TransportEvidence,
    >,
}

impl DeviceView {
    pub fn of(d: &Device) -> DeviceView {
        DeviceView {
            id: d.id.clone(),
            recipient: d.recipient_id.clone(),
            identity_key: hex::encode(d.identity_key),
            agreement_key: d.agreement_key.map(hex::encode),
            labels: d.evidence.labels.clone(),
            enrolled_at: d.evidence.enrolled_at,
            revoked_at: d.evidence.revoked_at,
            client: d.evidence.client.clone(),
            transports: d.evidence.transports.clone(),
        }
    }
}

/// A recipient with its devices and threads.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientView {
    pub id: String,
    pub external_id: String,
    pub pseudonym: String,
    pub has_email: bool,
    pub has_phone: bool,
    pub created_at: i64,
    /// The portal's language for them (BCP 47), if set.
    pub language: Option<String>,
    /// Their IANA time zone for times on the portal, if set.
    pub time_zone: Option<String>,
    pub devices: Vec<DeviceView>,
    pub threads: Vec<ThreadView>,
}

/// A one-time challenge for a device's handshake.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Challenge)]
pub struct ChallengeView {
    /// 32 random bytes, hex: what the device signs over.
    pub nonce: String,
    pub device: String,
    #[schema(value_type = i64)]
    pub issued_at: ladder_core::Timestamp,
    #[schema(value_type = i64)]
    pub expires_at: ladder_core::Timestamp,
}

impl From<ladder_core::handshake::Challenge> for ChallengeView {
    fn from(c: ladder_core::handshake::Challenge) -> ChallengeView {
        ChallengeView {
            nonce: c.nonce,
            device: c.device,
            issued_at: c.issued_at,
            expires_at: c.expires_at,
        }
    }
}
