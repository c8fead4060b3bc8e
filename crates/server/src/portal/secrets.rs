//! The portal's secrets and how they are kept: link and session tokens as
//! SHA-256, one-time codes and CSRF tokens as HMACs under the tenant's
//! pseudonym key (bound to the link or session they belong to), compared
//! in constant time; the session cookie and the form bodies.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use ladder_store::portal;

use crate::service::error::ServiceError;
use crate::state::AppState;

/// The session cookie's name. `__Host-` binds it to this exact origin
/// (Secure, `Path=/`, no `Domain`), which browsers only accept over HTTPS:
/// behind a plain-HTTP `public_url` (development) it is `ladder_portal`,
/// without `Secure`.
pub(super) fn cookie_name(state: &AppState) -> &'static str {
    if state.config.public_url_is_https() {
        "__Host-ladder_portal"
    } else {
        "ladder_portal"
    }
}

/// The `Set-Cookie` value that starts a session.
pub(super) fn session_cookie(state: &AppState, token: &str) -> String {
    let secure = if state.config.public_url_is_https() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict{secure}",
        cookie_name(state)
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub(super) fn clear_cookie(state: &AppState) -> String {
    let secure = if state.config.public_url_is_https() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
        cookie_name(state)
    )
}

/// The session token the request carries, if it is token-shaped.
pub(super) fn session_token(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(state);
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| portal::is_token_shaped(v))
}

/// The stored hash of a link or session token: its SHA-256, in hex.
pub(super) fn token_hash(token: &str) -> String {
    ladder_store::ids::token_hash(token)
}

/// [`token_hash`], or `None` for anything that is not token-shaped (it
/// cannot be one of ours, and is never looked up).
pub(super) fn hash_if_token(token: &str) -> Option<String> {
    portal::is_token_shaped(token).then(|| token_hash(token))
}

/// The keyed hash a code is stored under: HMAC-SHA256 with the tenant's
/// pseudonym key over the link id and the code, so a database alone cannot
/// be searched for the million possible codes, and a code for one link
/// means nothing on another.
pub(super) fn code_hash(
    state: &AppState,
    tenant_id: &str,
    link_id: &str,
    code: &str,
) -> Result<String, ServiceError> {
    Ok(state
        .keyring
        .pseudonym(tenant_id, &format!("portal code\0{link_id}\0{code}"))?)
}

/// The code form's CSRF token: bound to the link.
pub(super) fn link_csrf(
    state: &AppState,
    tenant_id: &str,
    link_id: &str,
) -> Result<String, ServiceError> {
    state.keyed_token(tenant_id, &format!("portal csrf link\0{link_id}"))
}

/// The close-session form's CSRF token: bound to the session.
pub(super) fn session_csrf(
    state: &AppState,
    tenant_id: &str,
    session_hash: &str,
) -> Result<String, ServiceError> {
    state.keyed_token(tenant_id, &format!("portal csrf session\0{session_hash}"))
}

/// Equality that takes as long for every pair of equal-length inputs.
pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// One field of an `application/x-www-form-urlencoded` body.
pub(super) fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| url_decode(k).as_deref() == Some(name))
        .and_then(|(_, v)| url_decode(v))
}

fn url_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// A code as typed: digits only once spaces and dashes are dropped.
pub(super) fn normalise_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode() {
        let body = b"csrf=ab%2Fc&code=123+456&x";
        assert_eq!(form_field(body, "csrf").as_deref(), Some("ab/c"));
        assert_eq!(form_field(body, "code").as_deref(), Some("123 456"));
        assert_eq!(form_field(body, "none"), None);
        assert_eq!(form_field(b"code=%zz", "code"), None);
        assert_eq!(normalise_code(" 123 456 "), "123456");
        assert_eq!(normalise_code("123-456"), "123456");
    }

    #[test]
    fn constant_time_equality() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
