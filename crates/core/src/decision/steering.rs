//! Force overrides, per class: which ladder steps an emergency steers the
//! payload away from, and why.

use crate::assurance::{Channel, Container};
use crate::overrides::OverrideEffect;
use crate::policy::Class;
use crate::reason::SkipReason;

use super::Note;
use super::steps::Context;

/// What the active force overrides do to one class: payload never travels
/// over a steered-off channel, and when the ladder uses that channel above
/// the forced container, every step above it is skipped. Several overrides
/// combine; the lowest forced step wins.
#[derive(Debug, Default)]
pub(super) struct Steering {
    /// Ladder index to start from, and the override that set it.
    forced_from: Option<(usize, String)>,
    /// Channels no payload may take, with the override that said so.
    off: Vec<(Channel, String, Container)>,
}

impl Steering {
    pub(super) fn skip(
        &self,
        class: &Class,
        index: usize,
        container: Container,
    ) -> Option<SkipReason> {
        if let Some((_, id, to)) = self.off.iter().find(|(c, _, _)| *c == container.channel()) {
            return Some(SkipReason::OverrideForcedStep {
                override_id: id.clone(),
                container: *to,
            });
        }
        match &self.forced_from {
            Some((from, id)) if index < *from => Some(SkipReason::OverrideForcedStep {
                override_id: id.clone(),
                container: class.ladder.get(*from).map_or(container, |s| s.container),
            }),
            _ => None,
        }
    }

    /// The override that steers this (legacy) route off its channel.
    pub(super) fn steers_off(&self, step: &crate::policy::Step) -> Option<&str> {
        self.off
            .iter()
            .find(|(c, _, _)| *c == step.container.channel())
            .map(|(_, id, _)| id.as_str())
    }
}

/// Force overrides apply per recipient (`Override::covers_recipient`).
pub(super) fn steering(ctx: &Context<'_>, class: &Class, notes: &mut Vec<Note>) -> Steering {
    let mut out = Steering::default();
    for o in ctx.overrides.iter() {
        let OverrideEffect::ForceStep(container) = o.effect else {
            continue;
        };
        if !o.covers_recipient(ctx.recipient, ctx.now) {
            continue;
        }
        out.off.push((o.channel, o.id.clone(), container));
        let uses_channel = |s: &crate::policy::Step| {
            s.container.channel() == o.channel
                || s.notifiers.iter().any(|n| n.channel() == o.channel)
        };
        match class.ladder.iter().position(|s| s.container == container) {
            Some(i)
                if class.ladder.iter().take(i).any(uses_channel)
                    && out.forced_from.as_ref().is_none_or(|(from, _)| i > *from) =>
            {
                out.forced_from = Some((i, o.id.clone()));
            }
            Some(_) => {}
            None if class.ladder.iter().chain(&class.legacy).any(uses_channel) => {
                notes.push(Note::ForceNotInLadder {
                    override_id: o.id.clone(),
                    container,
                });
            }
            None => {}
        }
    }
    out
}
