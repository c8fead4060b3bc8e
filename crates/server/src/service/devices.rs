//! Recipients, device enrolment, revocation and the capability handshake.
//!
//! The handshake is the only way signed evidence enters the store: a
//! one-time challenge is issued to an enrolled device; the device signs
//! (challenge, report) with its Ed25519 key; `ladder_core::handshake::verify`
//! checks both. A replayed, expired, forged or unsigned report, or one from
//! an unknown or revoked device, is rejected and audited — and changes
//! nothing else. A successful handshake may raise a thread's floor, as an
//! explicit audited elevation, when every active device has re-proved itself.

use ladder_core::Timestamp;
use ladder_core::evidence::{DeviceEvidence, PlatformLabels};
use ladder_core::handshake::{self, Challenge, SignedReport};
use ladder_core::thread::assess;
use ladder_store::keyring::WrappedKey;
use ladder_store::recipients::{self, Device, Recipient, StoredChallenge};
use ladder_store::stats::Metric;
use ladder_store::{StoreError, ids, sealed, threads};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::views::{DeviceView, RecipientView, ThreadView};
use crate::service::error::ServiceError;
use crate::service::send::load_inputs;
use crate::service::{audit, contact_aad, load_recipient, stats};
use crate::state::{AppState, now};

/// `POST /v1/recipients`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecipient {
    /// The sender's own id for this person.
    pub external_id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// The portal's language for them (`en`, `de`, `fr`, `es`, with or
    /// without a region); unset: the browser's.
    #[serde(default)]
    pub language: Option<String>,
    /// Their IANA time zone for times on the portal; unset: UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// Addresses at rest: sealed under their own data key, wrapped by the
/// tenant key.
#[derive(Debug, Serialize, Deserialize)]
pub struct SealedContact {
    pub kek_id: String,
    pub wrapped: String,
    pub ciphertext: String,
}

/// A recipient's addresses, in the clear only while a channel needs them.
#[derive(Serialize, Deserialize)]
pub(crate) struct Contact {
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Opens a recipient's sealed addresses.
pub(crate) fn open_contact(
    state: &AppState,
    tenant_id: &str,
    recipient: &Recipient,
) -> Result<Contact, ServiceError> {
    let (key, sealed) = unwrap_contact(state, tenant_id, &recipient.contact_sealed)?;
    let ciphertext =
        hex::decode(&sealed.ciphertext).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let plain =
        sealed::open(&key, &contact_aad(tenant_id, &recipient.id), &ciphertext).map_err(|e| {
            ServiceError::Internal(format!("contact of {} does not open: {e}", recipient.id))
        })?;
    serde_json::from_slice(&plain).map_err(|e| ServiceError::Internal(e.to_string()))
}

fn check_address(field: &str, value: &str, ok: impl Fn(&str) -> bool) -> Result<(), ServiceError> {
    if value.len() > 254 || value.chars().any(char::is_control) || !ok(value) {
        // The value itself is an address: never echoed.
        return Err(ServiceError::invalid(
            "invalid_address",
            format!("field `{field}` is not a valid address"),
        ));
    }
    Ok(())
}

/// An optional recipient setting, checked (and made canonical) by `check`;
/// refused naming the field and what it must be.
fn checked(
    field: &str,
    value: Option<&str>,
    check: impl Fn(&str) -> Option<String>,
    code: &'static str,
    must_be: &str,
) -> Result<Option<String>, ServiceError> {
    value
        .map(|v| {
            check(v).ok_or_else(|| {
                ServiceError::invalid(
                    code,
                    format!(
                        "field `{field}` must be {must_be}, not `{}`",
                        v.chars().take(64).collect::<String>()
                    ),
                )
            })
        })
        .transpose()
}

/// Registers a recipient, or answers the existing one for the same
/// `external_id` (200). Two racing registrations make one recipient.
pub async fn register(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    req: NewRecipient,
) -> Result<(u16, Recipient), ServiceError> {
    let mut tries = 0;
    loop {
        match register_once(state, tenant_id, actor, &req).await {
            Err(ServiceError::Contention) if tries < 3 => tries += 1,
            other => return other,
        }
    }
}

async fn register_once(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    req: &NewRecipient,
) -> Result<(u16, Recipient), ServiceError> {
    let ext = req.external_id.trim();
    if ext.is_empty() || ext.len() > 128 || ext.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "invalid_external_id",
            "field `external_id` must be 1-128 characters, none of them a control character",
        ));
    }
    if let Some(e) = &req.email {
        check_address("email", e, |v| {
            v.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty() && d.contains('.') && !v.contains(char::is_whitespace)
            })
        })?;
    }
    if let Some(p) = &req.phone {
        check_address("phone", p, |v| {
            let digits = v.strip_prefix('+').unwrap_or(v);
            (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
        })?;
    }
    let language = checked(
        "language",
        req.language.as_deref(),
        crate::portal::locale::recipient_language,
        "invalid_language",
        &format!(
            "a language tag the portal speaks ({})",
            crate::portal::locale::SUPPORTED.join(", ")
        ),
    )?;
    let time_zone = checked(
        "time_zone",
        req.time_zone.as_deref(),
        crate::portal::locale::recipient_time_zone,
        "invalid_time_zone",
        "an IANA time zone such as `Europe/Berlin`",
    )?;
    let mut tx = state.store.begin().await?;
    if let Some(existing) = recipients::find_external(&mut tx, tenant_id, ext).await? {
        return Ok((200, existing));
    }
    let id = ids::new_id("rcp");
    let contact = Contact {
        email: req.email.clone(),
        phone: req.phone.clone(),
    };
    let plain = serde_json::to_vec(&contact).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let key = sealed::DataKey::generate().map_err(|e| ServiceError::Internal(e.to_string()))?;
    let ciphertext = sealed::seal(&key, &contact_aad(tenant_id, &id), &plain)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let wrapped = state.keyring.wrap(tenant_id, &key)?;
    let blob = serde_json::to_vec(&SealedContact {
        kek_id: wrapped.kek_id,
        wrapped: hex::encode(wrapped.bytes),
        ciphertext: hex::encode(ciphertext),
    })
    .map_err(|e| ServiceError::Internal(e.to_string()))?;
    // The pseudonym keys on the sender's id, not an address: stable when
    // an address changes, meaningless without the tenant's keyring.
    let pseudonym = state
        .keyring
        .pseudonym(tenant_id, &format!("recipient\0{ext}"))?;
    let recipient = Recipient {
        id: id.clone(),
        tenant_id: tenant_id.to_string(),
        external_id: ext.to_string(),
        pseudonym: pseudonym.clone(),
        contact_sealed: blob,
        has_email: req.email.is_some(),
        has_phone: req.phone.is_some(),
        created_at: now().0,
        language,
        time_zone,
    };
    recipients::insert(&mut tx, &recipient).await?;
    audit::record(
        &mut tx,
        state,
        tenant_id,
        actor,
        "recipient_registered",
        Some(&id),
        json!({ "recipient": pseudonym, "email": recipient.has_email, "phone": recipient.has_phone }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((201, recipient))
}

/// Opens a sealed contact blob (for rotation; channels come later).
pub fn unwrap_contact(
    state: &AppState,
    tenant_id: &str,
    blob: &[u8],
) -> Result<(sealed::DataKey, SealedContact), ServiceError> {
    let c: SealedContact =
        serde_json::from_slice(blob).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let bytes = hex::decode(&c.wrapped).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let key = state.keyring.unwrap(
        tenant_id,
        &WrappedKey {
            kek_id: c.kek_id.clone(),
            bytes,
        },
    )?;
    Ok((key, c))
}

/// `POST /v1/recipients/{id}/devices`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// Ed25519 public key, 32 bytes hex.
    pub identity_key: String,
    /// X25519 public key, 32 bytes hex, for in-app sealing.
    #[serde(default)]
    pub agreement_key: Option<String>,
    /// Platform labels (`os`, `client`, versions), for overrides.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub labels: PlatformLabels,
    /// Where the device takes content-free wake-ups: `platform` and `token`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub push: Option<NewPush>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPush {
    pub platform: ladder_channels::PushPlatform,
    pub token: String,
}

fn key32(field: &str, hex_text: &str) -> Result<[u8; 32], ServiceError> {
    hex::decode(hex_text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| {
            ServiceError::invalid(
                "invalid_key",
                format!("field `{field}` must be 32 bytes, hex-encoded (64 characters)"),
            )
        })
}

pub async fn enrol(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    recipient_id: &str,
    req: NewDevice,
) -> Result<Device, ServiceError> {
    let identity_key = key32("identity_key", &req.identity_key)?;
    if ed25519_dalek::VerifyingKey::from_bytes(&identity_key).is_err() {
        return Err(ServiceError::invalid(
            "invalid_key",
            "field `identity_key` is not a valid Ed25519 public key",
        ));
    }
    if let Some(p) = &req.push
        && (p.token.is_empty()
            || p.token.len() > 4096
            || !p.token.chars().all(|c| c.is_ascii_graphic()))
    {
        return Err(ServiceError::invalid(
            "invalid_push_token",
            "field `push.token` must be 1-4096 printable characters",
        ));
    }
    let agreement_key = req
        .agreement_key
        .as_deref()
        .map(|k| key32("agreement_key", k))
        .transpose()?;
    let mut tx = state.store.begin().await?;
    let recipient = recipients::get(&mut tx, tenant_id, recipient_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("recipient", recipient_id))?;
    let id = ids::new_id("dev");
    let device = Device {
        id: id.clone(),
        tenant_id: tenant_id.to_string(),
        recipient_id: recipient.id.clone(),
        identity_key,
        agreement_key,
        push: req.push.map(|p| {
            let platform = match p.platform {
                ladder_channels::PushPlatform::Apns => "apns",
                ladder_channels::PushPlatform::Fcm => "fcm",
            };
            (platform.to_string(), p.token)
        }),
        evidence: DeviceEvidence::new(id.as_str(), req.labels, now()),
    };
    recipients::insert_device(&mut tx, &device).await?;
    audit::record(
        &mut tx,
        state,
        tenant_id,
        actor,
        "device_enrolled",
        Some(&id),
        json!({ "recipient": recipient.pseudonym, "labels": device.evidence.labels, "in_app_key": agreement_key.is_some() }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(device)
}

/// Revokes a device. Its recipient's threads drop at once (revocation is a
/// downgrade cause), each drop labelled and audited in the same transaction.
pub async fn revoke(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    device_id: &str,
) -> Result<Device, ServiceError> {
    let mut tx = state.store.begin().await?;
    let dialect = state.store.dialect();
    let mut device = recipients::get_device_for_update(&mut tx, dialect, tenant_id, device_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("device", device_id))?;
    if device.evidence.revoked_at.is_some() {
        return Ok(device);
    }
    // Threads before the first audit append: the lock order every writer keeps.
    let threads =
        threads::list_for_recipient(&mut tx, dialect, true, tenant_id, &device.recipient_id)
            .await?;
    let at = now();
    device.evidence.revoked_at = Some(at);
    recipients::update_device(&mut tx, &device).await?;
    // Its undelivered in-app copies are no longer served to anyone.
    ladder_store::inbox::remove_device(&mut tx, tenant_id, device_id).await?;
    audit::record(
        &mut tx,
        state,
        tenant_id,
        actor,
        "device_revoked",
        Some(device_id),
        json!({ "recipient_id": device.recipient_id }),
    )
    .await?;
    let inputs = load_inputs(&mut tx, state, tenant_id, &device.recipient_id).await?;
    let all = inputs.all_overrides();
    let assessment = assess(
        inputs.policy.evidence(),
        &inputs.recipient.evidence,
        &all,
        at,
    );
    for mut thread in threads {
        if let Some(drop) = thread
            .floor
            .observe(&assessment, &inputs.recipient.evidence, at)
        {
            thread.floor.apply_drop(&drop);
            thread.updated_at = at.0;
            threads::update(&mut tx, &thread).await?;
            audit::record(
                &mut tx,
                state,
                tenant_id,
                actor,
                "thread_downgraded",
                Some(&thread.id),
                json!({ "from": drop.from, "to": drop.to, "causes": drop.causes }),
            )
            .await?;
            metrics::counter!("ladder_downgrades_total", "class" => "-").increment(1);
            stats::record(&mut tx, tenant_id, Metric::ThreadDowngrade, "").await?;
        }
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(device)
}

pub async fn challenge(
    state: &AppState,
    tenant_id: &str,
    device_id: &str,
) -> Result<Challenge, ServiceError> {
    let mut tx = state.store.begin().await?;
    let device = recipients::get_device(&mut tx, tenant_id, device_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("device", device_id))?;
    if device.evidence.is_revoked() {
        return Err(ServiceError::conflict(
            "device_revoked",
            format!("device `{device_id}` is revoked; enrol it again"),
        ));
    }
    let at = now();
    let c = StoredChallenge {
        nonce: ids::random_hex(32)?,
        device_id: device.id.clone(),
        issued_at: at.0,
        expires_at: at.0 + state.config.handshake.challenge_ttl_s,
    };
    recipients::insert_challenge(&mut tx, tenant_id, &c).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Challenge {
        nonce: c.nonce,
        device: c.device_id,
        issued_at: Timestamp(c.issued_at),
        expires_at: Timestamp(c.expires_at),
    })
}

/// A verified handshake, with the threads it elevated.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandshakeResult {
    pub device: String,
    pub accepted: bool,
    #[schema(value_type = Vec<Object>)]
    pub elevations: Vec<serde_json::Value>,
}

/// Verifies a signed report. On rejection: the challenge is spent, the
/// rejection audited, nothing else changes, and the caller gets 422.
pub async fn handshake(
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    device_id: &str,
    signed: SignedReport,
) -> Result<HandshakeResult, ServiceError> {
    let mut tx = state.store.begin().await?;
    let dialect = state.store.dialect();
    let device = recipients::get_device_for_update(&mut tx, dialect, tenant_id, device_id).await?;
    // Threads before the first audit append: the lock order every writer keeps.
    if let Some(d) = &device {
        threads::list_for_recipient(&mut tx, dialect, true, tenant_id, &d.recipient_id).await?;
    }
    let outstanding = recipients::take_challenge(&mut tx, tenant_id, &signed.report.nonce).await?;
    let at = now();
    let verdict = match &device {
        None => Err(("unknown_device", format!("no device `{device_id}`"))),
        Some(d) => {
            let challenge = outstanding.as_ref().map(|c| Challenge {
                nonce: c.nonce.clone(),
                device: c.device_id.clone(),
                issued_at: Timestamp(c.issued_at),
                expires_at: Timestamp(c.expires_at),
            });
            handshake::verify(
                challenge.as_ref(),
                &d.identity_key,
                &d.evidence,
                &signed,
                at,
            )
            .map_err(|r| (r.code(), r.to_string()))
        }
    };
    let verified = match verdict {
        Ok(v) => v,
        Err((code, message)) => {
            // Keep only the spent challenge and the audit entry.
            audit::record(
                &mut tx,
                state,
                tenant_id,
                actor,
                "handshake_rejected",
                Some(device_id),
                json!({ "code": code }),
            )
            .await?;
            tx.commit().await.map_err(StoreError::from)?;
            metrics::counter!("ladder_handshakes_total", "outcome" => "rejected", "code" => code)
                .increment(1);
            if device.is_none() {
                // Unknown here, whether it never existed or is another
                // tenant's: the same 404 either way.
                return Err(ServiceError::not_found("device", device_id));
            }
            return Err(ServiceError::invalid("handshake_rejected", message)
                .with_details(json!({ "reason": code })));
        }
    };
    let Some(mut device) = device else {
        return Err(ServiceError::Internal(
            "verified a report for no device".into(),
        ));
    };
    verified.apply(&mut device.evidence);
    recipients::update_device(&mut tx, &device).await?;
    audit::record(
        &mut tx,
        state,
        tenant_id,
        actor,
        "handshake_verified",
        Some(device_id),
        json!({
            "client": verified.report().client,
            "transports": verified.report().transports,
        }),
    )
    .await?;
    let elevations =
        elevate_threads(&mut tx, state, tenant_id, actor, &device.recipient_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    metrics::counter!("ladder_handshakes_total", "outcome" => "verified", "code" => "ok")
        .increment(1);
    Ok(HandshakeResult {
        device: device_id.to_string(),
        accepted: true,
        elevations,
    })
}

/// Raises the floor of every thread of the recipient that the fresh
/// evidence now supports, each as an audited elevation.
async fn elevate_threads(
    tx: &mut ladder_store::Tx,
    state: &AppState,
    tenant_id: &str,
    actor: &str,
    recipient_id: &str,
) -> Result<Vec<serde_json::Value>, ServiceError> {
    let inputs = load_inputs(tx, state, tenant_id, recipient_id).await?;
    let all = inputs.all_overrides();
    let mut out = Vec::new();
    for mut thread in
        threads::list_for_recipient(tx, state.store.dialect(), true, tenant_id, recipient_id)
            .await?
    {
        let at = now();
        if let Ok(e) = thread.floor.elevate(
            inputs.policy.evidence(),
            &inputs.recipient.evidence,
            &all,
            at,
        ) {
            thread.floor.apply_elevation(&e);
            thread.updated_at = at.0;
            threads::update(tx, &thread).await?;
            let detail =
                json!({ "thread": thread.id, "from": e.from, "to": e.to, "devices": e.devices });
            audit::record(
                tx,
                state,
                tenant_id,
                actor,
                "thread_elevated",
                Some(&thread.id),
                detail.clone(),
            )
            .await?;
            stats::record(tx, tenant_id, Metric::ThreadElevation, "").await?;
            out.push(detail);
        }
    }
    Ok(out)
}

/// What the API shows of a device: never its evidence's raw internals
/// beyond what a support agent needs.
/// Why a recipient's threads sit where they do (for the recipient view).
pub async fn recipient_view(
    state: &AppState,
    tenant_id: &str,
    recipient_id: &str,
) -> Result<RecipientView, ServiceError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let r = load_recipient(&mut conn, tenant_id, recipient_id).await?;
    let threads = threads::list_for_recipient(
        &mut conn,
        state.store.dialect(),
        false,
        tenant_id,
        recipient_id,
    )
    .await?;
    Ok(RecipientView {
        id: r.recipient.id,
        external_id: r.recipient.external_id,
        pseudonym: r.recipient.pseudonym,
        has_email: r.recipient.has_email,
        has_phone: r.recipient.has_phone,
        created_at: r.recipient.created_at,
        language: r.recipient.language,
        time_zone: r.recipient.time_zone,
        devices: r.devices.iter().map(DeviceView::of).collect(),
        threads: threads.iter().map(ThreadView::of).collect(),
    })
}
