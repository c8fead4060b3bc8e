//! Placeholder: the fake sms provider (the channels work fills it in).
