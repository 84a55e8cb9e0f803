//! The ESP receive path under hostile input: port-4500 classification, header and length
//! checks, SPI lookup, the replay window, ICV verification, and (through the harness's
//! sealed mode) the padding, Next Header and inner-packet checks behind the ICV.
//!
//! The input format is documented in `esp::fuzzing`; `corpus/recv/` holds the seeds,
//! regenerated with `ESP_WRITE_CORPUS=1 cargo test -p esp --test corpus`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Fresh SAs per input keep runs reproducible (the replay window has memory).
    let _ = esp::fuzzing::Harness::new().run(data);
});
