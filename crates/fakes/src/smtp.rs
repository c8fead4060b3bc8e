//! Placeholder: the fake smtp provider (the channels work fills it in).
