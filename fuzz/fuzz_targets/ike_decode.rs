//! The IKEv2 message parser under hostile input: header, payload chain, every payload
//! decoder. A decoded message must re-encode to a canonical form that decodes to the same
//! value (decode-encode-compare, as rustls's `fuzz_message`). See `ike::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ike::fuzzing::decode_message(data);
});
