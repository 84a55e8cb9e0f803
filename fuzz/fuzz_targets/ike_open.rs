//! The SK payload decrypt path behind the integrity check: the input is sealed with fixed
//! keys and opened, so padding handling and the inner payload parser see fuzzer bytes.
//! Input format: suite selector, first inner payload type, plaintext. See `ike::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ike::fuzzing::open_sealed(data);
});
