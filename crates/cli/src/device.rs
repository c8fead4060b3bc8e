//! Placeholder: the in-app device client (the channels work fills it in).
