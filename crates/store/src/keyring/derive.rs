//! Secrets derived from the keyring for one purpose and one input, for
//! values that must come out the same every time they are computed (a
//! portal link re-issued on a retry) without being stored.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{Keyring, KeyringError};

impl Keyring {
    /// A 256-bit secret derived for one purpose and one input:
    /// HMAC-SHA256 under the tenant's pseudonym key over
    /// `"ladder derive\0" + purpose + "\0" + input`, input taken as given.
    /// Deterministic, so a value that must stay the same across retries (a
    /// portal link for one message and step) can be derived again instead of
    /// being stored; unguessable without the keyring.
    pub fn derive(
        &self,
        tenant_id: &str,
        purpose: &str,
        input: &str,
    ) -> Result<Zeroizing<[u8; 32]>, KeyringError> {
        let state = self.read();
        let tenant = state.tenant(tenant_id)?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(tenant.pseudonym_key.0.as_slice())
            .map_err(|_| self.corrupt("pseudonym key rejected by HMAC".to_owned()))?;
        mac.update(b"ladder derive\0");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(input.as_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(mac.finalize().into_bytes().as_slice());
        Ok(out)
    }
}
