//! Scenario text → parse (`ladder_core::scenario`): a scenario or errors
//! that render, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = ladder_core::scenario::parse_scenario(text, "fuzz.toml") {
        for e in errors {
            let _ = e.to_string();
        }
    }
});
