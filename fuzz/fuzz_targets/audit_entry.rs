//! Audit entries as they are read back (`ladder_store::audit`): JSON lines
//! of an export (or rows' details), each hashed over its canonical
//! encoding, and the whole chain verified. Never a panic; the canonical
//! JSON of any value the log accepts (numbers are integers: appending
//! refuses fractions) parses back to that value and is a fixed point.
#![no_main]

use ladder_store::audit::{self, AuditEntry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut entries = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Ok(entry) = serde_json::from_str::<AuditEntry>(line) {
            let _ = audit::entry_hash(&entry);
            entries.push(entry);
        } else if let Ok(value) = serde_json::from_str::<serde_json::Value>(line)
            && integers_only(&value)
        {
            let canonical = audit::canonical_json(&value);
            let back: serde_json::Value =
                serde_json::from_slice(&canonical).expect("canonical JSON parses");
            assert_eq!(back, value, "canonical JSON changes the value");
            assert_eq!(audit::canonical_json(&back), canonical, "not a fixed point");
        }
    }
    let _ = audit::verify(entries, &[], None);
});

/// Whether every number in `value` is an integer, as audit details must be.
fn integers_only(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) => n.is_i64() || n.is_u64(),
        Value::Array(items) => items.iter().all(integers_only),
        Value::Object(map) => map.values().all(integers_only),
        _ => true,
    }
}
