//! Placeholder: the fake push provider (the channels work fills it in).
