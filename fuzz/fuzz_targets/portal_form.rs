//! Portal form bodies (`ladder_server::portal::decode_form_field`), as the
//! code and send-code handlers read them: never a panic on any bytes, and
//! every string survives a round trip through a browser's encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in ["csrf", "code"] {
        if let Some(v) = ladder_server::portal::decode_form_field(data, name) {
            let _ = ladder_server::portal::normalise_code(&v);
        }
    }
    // What a browser sends for a value: it must decode to that value.
    if let Ok(value) = std::str::from_utf8(data) {
        let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let body = format!("csrf=x&code={encoded}&other=y");
        assert_eq!(
            ladder_server::portal::decode_form_field(body.as_bytes(), "code").as_deref(),
            Some(value)
        );
    }
});
