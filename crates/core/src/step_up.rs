//! The portal's second factor: which channel its one-time code goes by.
//!
//! A portal route is only worth something if the recipient can open it, and
//! the portal opens only after a one-time code. So the decision and the
//! portal must agree on where that code goes: [`second_factor`] is the one
//! rule both apply — the decision with the contact channels the evidence
//! verifies (a step qualifies only when it finds one), the portal with the
//! contacts on file (to send the code the decision counted on).
//!
//! Two inboxes are told apart: the recipient's mailbox (e-mail) and their
//! phone (SMS, and the RCS and push notices that land on the same phone).
//! `other_channel` sends the code to the inbox the notice did not go to.

use serde::{Deserialize, Serialize};

use crate::assurance::{Channel, StepUp};

/// Where a portal's one-time code goes, as a decision chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    /// A text to the phone number on file.
    Sms,
    /// A message to the e-mail address on file.
    Email,
    /// No code: the step's `step_up = "none"`.
    None,
}

impl SecondFactor {
    pub fn as_str(self) -> &'static str {
        match self {
            SecondFactor::Sms => "sms",
            SecondFactor::Email => "email",
            SecondFactor::None => "none",
        }
    }

    /// The factor a name stands for (`sms`, `email`, `none`), if any.
    pub fn from_name(name: &str) -> Option<SecondFactor> {
        [SecondFactor::Sms, SecondFactor::Email, SecondFactor::None]
            .into_iter()
            .find(|f| f.as_str() == name)
    }

    /// The channel the code leaves by; `None` when there is no code.
    pub fn channel(self) -> Option<Channel> {
        match self {
            SecondFactor::Sms => Some(Channel::Sms),
            SecondFactor::Email => Some(Channel::Email),
            SecondFactor::None => None,
        }
    }
}

impl std::fmt::Display for SecondFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which contact channels could carry a code: a phone number for SMS, an
/// e-mail address. Evidence, never the addresses themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodeChannels {
    pub sms: bool,
    pub email: bool,
}

/// The second factor of a portal step whose link went by `notice` (the
/// notifier's channel; `None` if unknown), under `step_up`, given the
/// contact channels that can carry a code. `None` when no channel the
/// setting accepts can: the portal could not be opened.
///
/// `other_channel` sends the code to the other inbox than the notice's;
/// `any_channel` prefers that too and falls back on the notice's own.
pub fn second_factor(
    step_up: StepUp,
    notice: Option<Channel>,
    can: CodeChannels,
) -> Option<SecondFactor> {
    let sms = can.sms.then_some(SecondFactor::Sms);
    let email = can.email.then_some(SecondFactor::Email);
    // The inbox the link landed in, and the other one.
    let (other, same) = match notice {
        Some(Channel::Email) => (sms, email),
        Some(_) => (email, sms),
        // No notice to keep apart from: either inbox is "another".
        None => (sms.or(email), None),
    };
    match step_up {
        StepUp::None => Some(SecondFactor::None),
        StepUp::OtherChannel => other,
        StepUp::AnyChannel => other.or(same),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: CodeChannels = CodeChannels {
        sms: true,
        email: true,
    };
    const PHONE: CodeChannels = CodeChannels {
        sms: true,
        email: false,
    };
    const MAIL: CodeChannels = CodeChannels {
        sms: false,
        email: true,
    };

    #[test]
    fn other_channel_never_sends_the_code_to_the_inbox_that_got_the_link() {
        let rule = |notice, can| second_factor(StepUp::OtherChannel, Some(notice), can);
        assert_eq!(rule(Channel::Email, BOTH), Some(SecondFactor::Sms));
        assert_eq!(rule(Channel::Sms, BOTH), Some(SecondFactor::Email));
        assert_eq!(rule(Channel::Email, MAIL), None);
        assert_eq!(rule(Channel::Sms, PHONE), None);
        // An RCS or push notice lands on the phone too.
        assert_eq!(rule(Channel::Rcs, PHONE), None);
        assert_eq!(rule(Channel::Push, BOTH), Some(SecondFactor::Email));
        assert_eq!(
            second_factor(StepUp::OtherChannel, None, MAIL),
            Some(SecondFactor::Email)
        );
    }

    #[test]
    fn any_channel_prefers_the_other_inbox_and_falls_back_on_the_notices() {
        let rule = |notice, can| second_factor(StepUp::AnyChannel, Some(notice), can);
        assert_eq!(rule(Channel::Email, BOTH), Some(SecondFactor::Sms));
        assert_eq!(rule(Channel::Email, MAIL), Some(SecondFactor::Email));
        assert_eq!(rule(Channel::Sms, PHONE), Some(SecondFactor::Sms));
        assert_eq!(rule(Channel::Sms, CodeChannels::default()), None);
    }

    #[test]
    fn no_step_up_needs_no_channel() {
        assert_eq!(
            second_factor(StepUp::None, Some(Channel::Email), CodeChannels::default()),
            Some(SecondFactor::None)
        );
    }
}
