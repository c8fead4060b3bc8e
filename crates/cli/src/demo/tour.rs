//! The tour's moving parts: the node's address and keys, the fake
//! providers, an HTTP client, and the tally of checked steps.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use ladder_fakes::{push, rcs, sms, smtp};
use serde_json::{Value, json};

use crate::CliError;
use crate::service::run_err;

/// The tour's running state: the node, its fakes, an HTTP client and the
/// verdict so far.
pub(super) struct Tour {
    pub(super) base: String,
    pub(super) sender: String,
    pub(super) admin: String,
    pub(super) client: reqwest::Client,
    pub(super) rcs: rcs::FakeRcs,
    pub(super) sms: sms::FakeSms,
    pub(super) smtp: smtp::FakeSmtp,
    pub(super) _push: push::FakePush,
    pub(super) step: usize,
    pub(super) failures: usize,
}

impl Tour {
    pub(super) fn say(&mut self, what: &str) {
        self.step += 1;
        out!("\n{}. {what}", self.step);
    }

    pub(super) fn check(&mut self, ok: bool, what: &str) {
        if ok {
            out!("   ok    {what}");
        } else {
            out!("   FAIL  {what}");
            self.failures += 1;
        }
    }

    pub(super) async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> (u16, Value) {
        let method = method.parse().unwrap_or(reqwest::Method::GET);
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"));
        if let Some(k) = idem {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (
                    status,
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                )
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    pub(super) async fn recipient(
        &self,
        external_id: &str,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> String {
        let (_, r) = self
            .call(
                "POST",
                "/v1/recipients",
                &self.sender,
                Some(json!({ "external_id": external_id, "email": email, "phone": phone })),
                None,
            )
            .await;
        r.get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// Enrols a phone and runs a signed handshake reporting `transports`.
    pub(super) async fn phone(
        &self,
        recipient: &str,
        seed: u8,
        labels: Value,
        client: (&str, &str),
        transports: Value,
    ) -> (String, SigningKey) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let (_, d) = self
            .call(
                "POST",
                &format!("/v1/recipients/{recipient}/devices"),
                &self.sender,
                Some(json!({ "identity_key": hex::encode(key.verifying_key().to_bytes()), "labels": labels })),
                None,
            )
            .await;
        let device = d
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.handshake(&device, &key, client, transports).await;
        (device, key)
    }

    pub(super) async fn handshake(
        &self,
        device: &str,
        key: &SigningKey,
        client: (&str, &str),
        transports: Value,
    ) -> bool {
        let (_, c) = self
            .call(
                "POST",
                &format!("/v1/devices/{device}/challenge"),
                &self.sender,
                Some(json!({})),
                None,
            )
            .await;
        let report = serde_json::from_value::<ladder_core::handshake::DeviceReport>(json!({
            "device": device,
            "nonce": c.get("nonce").cloned().unwrap_or_default(),
            "client": { "name": client.0, "version": client.1, "policy_revision": 4 },
            "transports": transports,
        }));
        let Ok(report) = report else { return false };
        let Ok(signed) = ladder_core::handshake::sign(key, report) else {
            return false;
        };
        let (st, _) = self
            .call(
                "POST",
                &format!("/v1/devices/{device}/handshake"),
                &self.sender,
                serde_json::to_value(signed).ok(),
                None,
            )
            .await;
        st == 200
    }

    pub(super) async fn send(
        &self,
        idem: &str,
        recipient: &str,
        class: &str,
        body: &str,
    ) -> (u16, Value) {
        self.call(
            "POST",
            "/v1/messages",
            &self.sender,
            Some(json!({ "recipient": recipient, "class": class, "body": body })),
            Some(idem),
        )
        .await
    }

    /// Waits (bounded) until the message reaches one of `states`.
    pub(super) async fn settle(&self, id: &str, states: &[&str]) -> Value {
        let mut last = Value::Null;
        for _ in 0..100 {
            let (_, m) = self
                .call(
                    "GET",
                    &format!("/v1/messages/{id}"),
                    &self.sender,
                    None,
                    None,
                )
                .await;
            if m.get("status")
                .and_then(Value::as_str)
                .is_some_and(|s| states.contains(&s))
            {
                return m;
            }
            last = m;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last
    }
}

pub(super) fn route_of(answer: &Value) -> String {
    let r = answer.pointer("/decision/outcome/route");
    let container = r
        .and_then(|r| r.get("container"))
        .and_then(Value::as_str)
        .unwrap_or("-");
    match r.and_then(|r| r.get("notifier")).and_then(Value::as_str) {
        Some(n) => format!("{container}+{n}"),
        None => container.to_string(),
    }
}

pub(super) fn show(answer: &Value) {
    let outcome = answer.get("outcome").and_then(Value::as_str).unwrap_or("-");
    let assurance = answer
        .pointer("/decision/outcome/route/assurance")
        .and_then(Value::as_str)
        .unwrap_or("-");
    if answer.pointer("/decision/outcome/route").is_some() {
        out!(
            "   decision: {outcome} over {} at {assurance}",
            route_of(answer)
        );
    } else {
        out!("   decision: {outcome}");
    }
}

pub(super) fn free_port() -> Result<u16, CliError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(run_err)?;
    Ok(l.local_addr().map_err(run_err)?.port())
}
