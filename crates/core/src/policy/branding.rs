//! A tenant's look on the recipient portal: the name recipients know it
//! by, a small logo and two colours. Recipients judge a page they were sent
//! to by whether it looks like the sender's; an unstyled page reads as
//! phishing. Validated here like every other policy value, so the portal
//! only ever puts checked values into a page: colours are `#rrggbb` (they
//! land in a stylesheet), the logo is a small base64 PNG or SVG data URI
//! (shown through `<img>`, where an SVG runs no script), and the text
//! colour must stay readable on the accent (WCAG AA, 4.5:1).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Checker;
use super::diagnostic::PolicyErrorKind as E;
use super::raw::RawBranding;

/// The largest logo, as data URI text: a logo, not a photograph, and the
/// page must stay small on a phone.
pub const MAX_LOGO_CHARS: usize = 48 * 1024;

/// The least contrast between the text colour and the accent it sits on
/// (WCAG 2 level AA for normal text).
pub const MIN_CONTRAST: f64 = 4.5;

/// The portal's accent when the policy sets none: a dark neutral blue.
pub const DEFAULT_ACCENT: Colour = Colour([0x1f, 0x3a, 0x5f]);
/// Text on the accent when the policy sets none.
pub const DEFAULT_TEXT: Colour = Colour([0xff, 0xff, 0xff]);

/// An sRGB colour, written `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub [u8; 3]);

impl Colour {
    /// Parses `#rrggbb` (either case); nothing else.
    pub fn parse(text: &str) -> Option<Colour> {
        let hex = text.strip_prefix('#')?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        };
        Some(Colour([byte(0)?, byte(2)?, byte(4)?]))
    }

    /// WCAG 2 relative luminance.
    pub fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    }

    /// WCAG 2 contrast ratio between two colours, 1 to 21.
    pub fn contrast(self, other: Colour) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (light, dark) = if a >= b { (a, b) } else { (b, a) };
        (light + 0.05) / (dark + 0.05)
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

impl Serialize for Colour {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Colour::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a `#rrggbb` colour")))
    }
}

/// A checked logo: `data:image/png;base64,…` or
/// `data:image/svg+xml;base64,…`, at most [`MAX_LOGO_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Logo(String);

impl Logo {
    /// The data URI, safe in a quoted attribute (base64 and a fixed prefix).
    pub fn data_uri(&self) -> &str {
        &self.0
    }

    fn parse(text: &str) -> Result<Logo, String> {
        if text.len() > MAX_LOGO_CHARS {
            return Err(format!(
                "is {} characters; a logo may be at most {MAX_LOGO_CHARS}",
                text.len()
            ));
        }
        let data = ["data:image/png;base64,", "data:image/svg+xml;base64,"]
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix))
            .ok_or_else(|| {
                "must be a `data:image/png;base64,` or `data:image/svg+xml;base64,` URI".to_string()
            })?;
        let body = data.trim_end_matches('=');
        let padding = data.len() - body.len();
        let base64 = body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        if data.is_empty() || !base64 || padding > 2 || data.len() % 4 != 0 {
            return Err("is not valid base64 after the `base64,` prefix".to_string());
        }
        Ok(Logo(text.to_string()))
    }
}

/// The `[branding]` table as the policy sets it; unset values take the
/// defaults in [`Branding`]'s accessors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    logo: Option<Logo>,
    accent: Colour,
    text: Colour,
}

impl Default for Branding {
    fn default() -> Self {
        Branding {
            name: None,
            logo: None,
            accent: DEFAULT_ACCENT,
            text: DEFAULT_TEXT,
        }
    }
}

impl Branding {
    /// The name shown on the portal, if the policy sets one (else the
    /// policy's `display_name`).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    pub fn logo(&self) -> Option<&Logo> {
        self.logo.as_ref()
    }
    /// The colour of the portal's header band and buttons.
    pub fn accent(&self) -> Colour {
        self.accent
    }
    /// The colour of text on the accent; at least [`MIN_CONTRAST`] to it.
    pub fn text(&self) -> Colour {
        self.text
    }
}

/// Checks `[branding]`, recording every problem at its value.
pub(crate) fn branding(c: &mut Checker<'_>, raw: &RawBranding) -> Option<Branding> {
    let mut ok = true;
    let name = raw.name.as_ref().map(|n| {
        let v = n.get_ref().trim();
        if v.is_empty() || v.chars().count() > 80 || v.chars().any(char::is_control) {
            c.error(
                &n.span(),
                E::InvalidBranding {
                    field: "branding.name",
                    reason: "must be 1-80 characters, none of them a control character".into(),
                },
            );
            ok = false;
        }
        v.to_string()
    });
    let logo = raw
        .logo
        .as_ref()
        .and_then(|l| match Logo::parse(l.get_ref()) {
            Ok(logo) => Some(logo),
            Err(reason) => {
                c.error(
                    &l.span(),
                    E::InvalidBranding {
                        field: "branding.logo",
                        reason,
                    },
                );
                ok = false;
                None
            }
        });
    let mut colour = |value: &Option<super::raw::S<String>>, field: &'static str, default| {
        let Some(v) = value else {
            return Some(default);
        };
        let parsed = Colour::parse(v.get_ref());
        if parsed.is_none() {
            c.error(
                &v.span(),
                E::InvalidBranding {
                    field,
                    reason: format!("`{}` is not a colour; write it as `#rrggbb`", v.get_ref()),
                },
            );
        }
        parsed
    };
    let accent = colour(&raw.accent, "branding.accent", DEFAULT_ACCENT);
    let text = colour(&raw.text, "branding.text", DEFAULT_TEXT);
    let (Some(accent), Some(text)) = (accent, text) else {
        return None;
    };
    let ratio = accent.contrast(text);
    if ratio < MIN_CONTRAST {
        let span = raw
            .text
            .as_ref()
            .or(raw.accent.as_ref())
            .map_or(0..0, |s| s.span());
        c.error(
            &span,
            E::LowContrast {
                accent: accent.to_string(),
                text: text.to_string(),
                ratio: format!("{:.2}", (ratio * 100.0).floor() / 100.0),
            },
        );
        return None;
    }
    ok.then_some(Branding {
        name,
        logo,
        accent,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_matches_wcag_reference_values() {
        let black = Colour([0, 0, 0]);
        let white = Colour([255, 255, 255]);
        assert!((black.contrast(white) - 21.0).abs() < 1e-9);
        assert!((white.contrast(white) - 1.0).abs() < 1e-9);
        // #777777 on white is the classic just-failing grey (4.48:1).
        let grey = Colour::parse("#777777").unwrap_or(black);
        assert!(grey.contrast(white) < MIN_CONTRAST);
        assert!(DEFAULT_ACCENT.contrast(DEFAULT_TEXT) >= MIN_CONTRAST);
    }

    #[test]
    fn colours_are_six_hex_digits_only() {
        assert_eq!(Colour::parse("#0B5CAD"), Some(Colour([0x0b, 0x5c, 0xad])));
        for bad in ["0b5cad", "#0b5ca", "#0b5cadd", "#0b5cag", "red", "#+b5cad"] {
            assert_eq!(Colour::parse(bad), None, "{bad}");
        }
        assert_eq!(Colour([0x0b, 0x5c, 0xad]).to_string(), "#0b5cad");
    }

    #[test]
    fn logos_are_small_base64_png_or_svg_data_uris() {
        assert!(Logo::parse("data:image/png;base64,iVBORw0KGgo=").is_ok());
        assert!(Logo::parse("data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=").is_ok());
        assert!(Logo::parse("https://evil.example/logo.png").is_err());
        assert!(Logo::parse("data:text/html;base64,PHNjcmlwdD4=").is_err());
        assert!(Logo::parse("data:image/png;base64,\"><script>").is_err());
        assert!(Logo::parse("data:image/png;base64,").is_err());
        let big = format!("data:image/png;base64,{}", "A".repeat(MAX_LOGO_CHARS));
        assert!(Logo::parse(&big).is_err());
    }
}
