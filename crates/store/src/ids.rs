//! Identifiers, secrets and their hashes.
//!
//! Row ids are UUIDv7 with a short prefix naming what they identify
//! (`msg_…`, `dev_…`), so an id pasted into a support ticket says what it
//! is. Secrets handed to callers (API keys, confirmation tokens) are 32
//! random bytes; only their SHA-256 is stored, and they are looked up by it
//! (high-entropy tokens need no slow hash).

use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// A new time-ordered id: `{prefix}_{uuid v7 without dashes}`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// `bytes` random bytes, hex-encoded.
pub fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(hex::encode(buf))
}

/// A secret token with a readable prefix, e.g. `ldr_sender_…`.
pub fn new_token(prefix: &str) -> Result<String, StoreError> {
    Ok(format!("{prefix}_{}", random_hex(32)?))
}

/// A caller named something that is not an id of the kind asked for. The
/// offending text is never echoed: it may be anything (control bytes,
/// a pasted secret), and naming the field and the expected shape suffices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field} is not a {what} id: expected `{prefix}_` followed by 32 lowercase hexadecimal digits"
)]
pub struct IdError {
    pub field: &'static str,
    pub what: &'static str,
    pub prefix: &'static str,
}

/// Whether `raw` has the shape [`new_id`] gives ids of `prefix`.
fn has_id_shape(raw: &str, prefix: &str) -> bool {
    raw.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// One type per kind of row id a caller can name. Parsing is the only way
/// to make one from caller input, so a store query never sees a string
/// that is not an id (a NUL byte, a path, 10 MB of text).
macro_rules! row_ids {
    ($($(#[$doc:meta])* $name:ident => ($prefix:literal, $what:literal);)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The id's prefix, as [`new_id`] writes it.
            pub const PREFIX: &'static str = $prefix;

            /// Parses caller input; `field` names where it came from in the
            /// error (a path segment, a body field).
            pub fn parse(raw: &str, field: &'static str) -> Result<$name, IdError> {
                if has_id_shape(raw, $prefix) {
                    Ok($name(raw.to_string()))
                } else {
                    Err(IdError { field, what: $what, prefix: $prefix })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

row_ids! {
    /// A message: `msg_…`.
    MessageId => ("msg", "message");
    /// A recipient: `rcp_…`.
    RecipientId => ("rcp", "recipient");
    /// An enrolled device: `dev_…`.
    DeviceId => ("dev", "device");
    /// A thread: `thr_…`.
    ThreadId => ("thr", "thread");
    /// One time an override was set (its history row): `ovr_…`.
    OverrideRowId => ("ovr", "override row");
    /// A tenant's event subscription (an endpoint of theirs): `evs_…`.
    SubscriptionId => ("evs", "event subscription");
    /// One event for one subscription, the `webhook-id` of every attempt
    /// to deliver it: `evt_…`.
    EventId => ("evt", "event");
    /// One attempt to deliver an event: `eva_…`.
    AttemptId => ("eva", "delivery attempt");
}

/// The id of the HTTP request that caused some work: taken from the
/// caller's `X-Request-Id` when it is sane, else generated (`req_…`). It is
/// logged, returned to the caller and stored with the delivery work the
/// request caused, so it must never be able to carry a secret's shape or a
/// line break: 1–64 characters of `A-Z a-z 0-9 - _ . :` only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// The longest request id kept; a longer one is replaced.
    pub const MAX_LEN: usize = 64;

    /// A caller's request id, or `None` when it is empty, too long, or has
    /// any character outside the safe set (such an id is replaced, never
    /// echoed).
    pub fn parse(raw: &str) -> Option<RequestId> {
        let sane = (1..=Self::MAX_LEN).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        sane.then(|| RequestId(raw.to_string()))
    }

    /// A new request id, `req_` and a UUIDv7 (time-ordered, unique).
    pub fn generate() -> RequestId {
        RequestId(new_id("req"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The hex SHA-256 under which a token is stored and looked up.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_keep_the_safe_and_refuse_the_rest() {
        for ok in ["a", "req_0196f0c4", "client-42.retry:1", &"x".repeat(64)] {
            assert_eq!(RequestId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            &"x".repeat(65),
            "has space",
            "line\nbreak",
            "nul\0",
            "esc\u{1b}[31m",
            "semi;colon",
            "slash/path",
            "quote\"",
            "ünïcode",
        ] {
            assert!(RequestId::parse(bad).is_none(), "{bad:?} was kept");
        }
        let g = RequestId::generate();
        assert!(g.as_str().starts_with("req_"));
        assert_eq!(RequestId::parse(g.as_str()), Some(g));
    }

    #[test]
    fn ids_carry_their_prefix_and_differ() {
        let a = new_id("msg");
        let b = new_id("msg");
        assert!(a.starts_with("msg_"));
        assert_ne!(a, b);
    }

    #[test]
    fn generated_ids_parse_as_their_kind_only() {
        let m = new_id("msg");
        assert_eq!(MessageId::parse(&m, "id").unwrap().as_str(), m);
        assert!(RecipientId::parse(&m, "id").is_err());
        assert_eq!(
            DeviceId::parse(&new_id("dev"), "id")
                .unwrap()
                .as_str()
                .len(),
            36
        );
    }

    #[test]
    fn hostile_ids_are_refused_without_echo() {
        for raw in [
            "",
            "msg_",
            "msg_\0",
            "msg_%00",
            "msg_0196F0C4A2B37D1E8F00112233445566",
            "msg_0196f0c4a2b37d1e8f0011223344556",
            "msg_0196f0c4a2b37d1e8f001122334455667",
            "msg_0196f0c4a2b37d1e8f00112233445566\n",
            "msg-0196f0c4a2b37d1e8f00112233445566",
            "../msg_0196f0c4a2b37d1e8f00112233445566",
        ] {
            let e = MessageId::parse(raw, "path segment `id`").unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("path segment `id` is not a message id"),
                "{e}"
            );
            if raw.len() > 6 {
                assert!(!e.to_string().contains(raw), "{e}");
            }
        }
        assert!(MessageId::parse("msg_0196f0c4a2b37d1e8f00112233445566", "id").is_ok());
    }

    #[test]
    fn tokens_are_long_random_and_hashed_stably() {
        let t = new_token("ldr").unwrap();
        assert_eq!(t.len(), 4 + 64);
        assert_ne!(t, new_token("ldr").unwrap());
        assert_eq!(token_hash(&t), token_hash(&t));
        assert_ne!(token_hash(&t), t);
    }
}
