//! strongSwan proposal strings (our configuration syntax): parsing never panics and every
//! accepted proposal renders to a string that parses back to it. See `ike::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ike::fuzzing::parse_proposal(data);
});
