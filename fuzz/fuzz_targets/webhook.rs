//! Provider webhooks (`ladder_channels::{rcs, sms}` verifiers): the
//! signature check, then the parsing behind it.
//!
//! Input: one mode byte, then the signature header value up to the first
//! newline, then the body. Mode bit 0 picks the provider (RCS or SMS); bit
//! 1 signs the body correctly (ignoring the given header) so the fuzzer
//! reaches the parsing behind the check. A webhook with the fuzzer's own
//! signature must be refused; a correctly signed RCS one must never be
//! refused for its signature.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use ladder_channels::rcs::{RcsConfig, RcsWebhooks};
use ladder_channels::sms::{self, SmsWebhookVerifier};
use ladder_channels::webhook::{WebhookError, WebhookRequest, WebhookVerifier};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-webhook-secret";
const URL: &str = "https://ladder.example/v1/webhooks/sms/acme";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (given, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let given = String::from_utf8_lossy(given).into_owned();
    let rcs = mode & 1 == 0;
    let sign = mode & 2 != 0;
    let signature = match (rcs, sign) {
        (_, false) => given,
        (true, true) => {
            let mut mac = <Hmac<sha2::Sha512> as KeyInit>::new_from_slice(SECRET.as_bytes())
                .expect("any key length");
            mac.update(body);
            BASE64.encode(mac.finalize().into_bytes())
        }
        (false, true) => {
            let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
            sms::sign(SECRET, URL, &params)
        }
    };
    let header = if rcs {
        "x-goog-signature"
    } else {
        sms::SIGNATURE_HEADER
    };
    let headers = vec![(header.to_string(), signature)];
    let request = WebhookRequest {
        url: URL,
        headers: &headers,
        body,
    };
    let result = if rcs {
        let config = RcsConfig {
            endpoint: "https://rcs.example".into(),
            token: "fuzz-token".into(),
            agent_id: "fuzz-agent".into(),
            webhook_secret: SECRET.into(),
            timeout_ms: 1000,
            ..Default::default()
        };
        RcsWebhooks::new(&config)
            .expect("a valid config")
            .receipts(&request)
    } else {
        SmsWebhookVerifier::new(SECRET).receipts(&request)
    };
    if !sign {
        assert!(result.is_err(), "a forged webhook was accepted: {result:?}");
    } else if rcs {
        assert_ne!(result, Err(WebhookError::BadSignature));
    }
    if let Ok(receipts) = result {
        assert!(receipts.len() <= 1);
        assert!(receipts.iter().all(|r| !r.provider_ref.is_empty()));
    }
});
