//! Placeholder: in-app end-to-end encryption (the channels work fills it in).
//!
//! Contract: `install(store, channels)` replaces the sandbox `in_app`
//! adapter with the real one (ladder's own component, so it is always on).

use crate::Channels;

pub fn install(_store: &ladder_store::Store, channels: Channels) -> Channels {
    channels
}
