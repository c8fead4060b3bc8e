//! Rendering a notice while remembering which characters came from the
//! template's own text, so a class name inside the tenant's name or the
//! link is not mistaken for the template naming it.

use super::*;

/// Where a character of a rendered notice came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// The template's own text.
    Literal,
    /// A substituted variable (tenant name, link, expiry).
    Variable,
}

/// A rendered notice, lower-cased char by char, with each char's origin.
pub(super) struct RenderedChars {
    pub(super) chars: Vec<(char, Origin)>,
    pub(super) original: String,
}

pub(super) const TENANT_MARK: char = '\u{E000}';
pub(super) const LINK_MARK: char = '\u{E001}';
pub(super) const EXPIRES_MARK: char = '\u{E002}';

impl RenderedChars {
    pub(super) fn render(template: &crate::policy::NoticeTemplate, tenant: &str) -> RenderedChars {
        let marked = template
            .render(
                &TENANT_MARK.to_string(),
                &LINK_MARK.to_string(),
                &EXPIRES_MARK.to_string(),
            )
            .0;
        let mut chars = Vec::new();
        for c in marked.chars() {
            let (value, origin) = match c {
                TENANT_MARK => (tenant, Origin::Variable),
                LINK_MARK => (CHECK_LINK, Origin::Variable),
                EXPIRES_MARK => (CHECK_EXPIRES_IN, Origin::Variable),
                _ => {
                    chars.extend(c.to_lowercase().map(|l| (l, Origin::Literal)));
                    continue;
                }
            };
            for v in value.chars() {
                chars.extend(v.to_lowercase().map(|l| (l, origin)));
            }
        }
        RenderedChars {
            chars,
            original: template.render(tenant, CHECK_LINK, CHECK_EXPIRES_IN).0,
        }
    }

    pub(super) fn text(&self) -> String {
        self.original.clone()
    }

    pub(super) fn windows_of<'s>(&'s self, needle: &str) -> impl Iterator<Item = usize> + 's {
        let needle: Vec<char> = needle.chars().flat_map(char::to_lowercase).collect();
        let n = needle.len();
        (0..self.chars.len()).filter(move |&i| {
            n > 0
                && self
                    .chars
                    .get(i..i + n)
                    .is_some_and(|w| w.iter().map(|(c, _)| *c).eq(needle.iter().copied()))
        })
    }

    /// Whether `word` appears as a whole word (not inside a longer run of
    /// letters and digits) with at least one char from the template's own
    /// text. A class name that appears only inside the tenant's name or the
    /// link says nothing about the message.
    pub(super) fn names_word_in_literal(&self, word: &str) -> bool {
        let n: usize = word.chars().flat_map(char::to_lowercase).count();
        self.windows_of(word).any(|i| {
            let before = i
                .checked_sub(1)
                .and_then(|b| self.chars.get(b))
                .is_some_and(|(c, _)| c.is_alphanumeric());
            let after = self
                .chars
                .get(i + n)
                .is_some_and(|(c, _)| c.is_alphanumeric());
            let literal = self
                .chars
                .get(i..i + n)
                .is_some_and(|w| w.iter().any(|(_, o)| *o == Origin::Literal));
            !before && !after && literal
        })
    }

    pub(super) fn contains(&self, needle: &str) -> bool {
        self.windows_of(needle).next().is_some()
    }
}
