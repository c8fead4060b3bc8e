//! Policy text → parse and validate (`ladder_core::policy`): any text gives
//! a checked policy or diagnostics that render, never a panic.
#![no_main]

use ladder_core::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse(text, "fuzz.toml") {
        Ok(parsed) => {
            let _ = parsed.policy.version();
        }
        Err(errors) => {
            // Diagnostics render: line and column lookups stay in bounds.
            let _ = errors.to_string();
        }
    }
});
