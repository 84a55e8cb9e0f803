//! BGP UPDATE parsing under hostile input, in 2- and 4-octet AS contexts: path attributes,
//! RFC 7606 classification, NLRI. A clean decode must round-trip. See `bgp::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bgp::fuzzing::update_decode(data);
});
