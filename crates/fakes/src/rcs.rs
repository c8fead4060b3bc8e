//! Placeholder: the fake rcs provider (the channels work fills it in).
