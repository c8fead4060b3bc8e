//! Wire types shared by several routes: the one error envelope and the
//! decision answer of send, confirm and status. Each answer is serialised
//! from the type the OpenAPI document describes (`ToSchema`), so a field
//! added to an answer is in the document, and a test that validates live
//! answers against it fails when the two part.
//!
//! Types used by one route only live beside its handler, the same way:
//! `#[derive(Serialize, ToSchema)]` on the answer, `Json<ThatType>` out of
//! the handler, and the type named in its `#[utoipa::path]`.

use ladder_core::Decision;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The one error envelope every failure answers with. A request error never
/// carries an `outcome`: that field is reserved for decisions.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Error)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// What went wrong, in a stable `code` and a human `message`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `invalid_json`, `not_found`,
    /// `unauthenticated`, `idempotency_key_reused`.
    #[schema(example = "not_found")]
    pub code: String,
    /// What is wrong and where, for people; never message content.
    pub message: String,
    /// More about the error where the code has it (e.g. the JSON pointer of
    /// the offending field, every policy error with its line).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    pub details: Option<serde_json::Value>,
}

/// What the decision about a message was. Present on every answer of
/// send, confirm and status (and never on an error): `deliver` (202, on its
/// way by the chosen route), `hold` (202, waiting for a capability until a
/// deadline), `escalate` (202, handed to a person), `confirmation_required`
/// (409, the route is a downgrade the sender must confirm with the one-time
/// token) and `block` (422, no route qualifies and the class forbids going
/// lower).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    Deliver,
    ConfirmationRequired,
    Hold,
    Escalate,
    Block,
}

impl DecisionOutcome {
    pub fn of(outcome: &ladder_core::Outcome) -> DecisionOutcome {
        match outcome {
            ladder_core::Outcome::Deliver { .. } => DecisionOutcome::Deliver,
            ladder_core::Outcome::ConfirmationRequired { .. } => {
                DecisionOutcome::ConfirmationRequired
            }
            ladder_core::Outcome::Hold { .. } => DecisionOutcome::Hold,
            ladder_core::Outcome::Escalate => DecisionOutcome::Escalate,
            ladder_core::Outcome::Block => DecisionOutcome::Block,
        }
    }

    /// The status a decision answers with: 202 on its way (or held, or
    /// with a person), 409 waiting for the sender's confirmation, 422
    /// blocked. The one place an outcome becomes a status.
    pub fn http_status(self) -> u16 {
        match self {
            DecisionOutcome::Deliver | DecisionOutcome::Hold | DecisionOutcome::Escalate => 202,
            DecisionOutcome::ConfirmationRequired => 409,
            DecisionOutcome::Block => 422,
        }
    }
}

/// The answer to `POST /v1/messages` and `POST /v1/messages/{id}/confirm`:
/// the decision taken, as stored for replays under the idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SendAnswer)]
pub struct DecisionAnswer {
    /// The message id.
    pub id: String,
    /// The thread id.
    pub thread: String,
    pub outcome: DecisionOutcome,
    /// The message's status after the decision, e.g. `queued`,
    /// `awaiting_confirmation`, `held`, `escalated`, `blocked`.
    pub status: String,
    /// The decision with every step's skip reasons (no content, no
    /// addresses).
    #[schema(value_type = Object)]
    pub decision: Decision,
    /// The decision, rendered for people.
    pub explanation: String,
    /// With `confirmation_required`, in the first answer only: the one-time
    /// token `POST /v1/messages/{id}/confirm` takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_token: Option<String>,
    /// On a replayed `confirmation_required`: where a new token comes from
    /// (the first answer's token is never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_token_issued: Option<String>,
    /// The decision's entry in the tenant's audit log, for its inclusion
    /// proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_index: Option<u64>,
}

/// An answer that is either a decision or an error, as the 409 and 422 of
/// send and confirm are: a decision has `outcome`, an error has `error`.
/// Documents the union; each arm is serialised from its own type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "documents the union; each arm is answered as its own type"
)]
pub enum DecisionOrError {
    Decision(Box<DecisionAnswer>),
    Error(ErrorEnvelope),
}
