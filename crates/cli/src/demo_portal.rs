//! The demo's portal visit (filled in once the portal lands).

/// Opens the portal link, passes the one-time code read from `codes`, and
/// returns the message page.
pub async fn open(
    _client: &reqwest::Client,
    link: &str,
    _codes: impl Fn() -> Vec<String>,
) -> Result<String, String> {
    Err(format!("portal not available for `{link}`"))
}
