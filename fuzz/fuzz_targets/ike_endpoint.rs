//! Arbitrary datagrams into an `ike::Endpoint` with an established IKE SA: no panic, and
//! the SA survives (see `ike::fuzzing::endpoint_datagrams`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ike::fuzzing::endpoint_datagrams(data);
});
