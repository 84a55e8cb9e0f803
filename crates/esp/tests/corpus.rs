//! Replays the fuzz seed corpus (`fuzz/corpus/recv/`) and random mutations of it through
//! the same function the cargo-fuzz target calls, `esp::fuzzing::Harness::run`, so that CI
//! exercises the receive path against hostile input even where `cargo fuzz` cannot run.
//!
//! Regenerate the corpus after changing the harness or its SAs with
//! `ESP_WRITE_CORPUS=1 cargo test -p esp --test corpus`.

use std::path::PathBuf;

use esp::fuzzing::Harness;
use proptest::prelude::*;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/recv")
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("fuzz/corpus/recv exists")
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn write_corpus_if_asked() {
    if std::env::var_os("ESP_WRITE_CORPUS").is_none() {
        return;
    }
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in Harness::seeds() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn seeds_are_committed_and_current() {
    let committed = corpus();
    for (name, bytes) in Harness::seeds() {
        let found = committed.iter().find(|(n, _)| *n == name);
        assert_eq!(
            found.map(|(_, b)| b),
            Some(&bytes),
            "seed {name} missing or stale; run ESP_WRITE_CORPUS=1 cargo test -p esp --test corpus"
        );
    }
}

#[test]
fn seed_corpus_replays() {
    let files = corpus();
    assert!(files.len() >= 40, "only {} seeds", files.len());
    for (name, input) in files {
        let r = Harness::new().run(&input);
        if name.starts_with("valid-") {
            assert!(r.is_ok(), "{name}: {r:?}");
        } else {
            assert!(r.is_err(), "{name}: {r:?}");
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Set(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Extend(Vec<u8>),
    Splice(prop::sample::Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        3 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..40).prop_map(Mutation::Extend),
        1 => (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Mutation::Splice(i, v)),
    ]
}

fn apply(input: &mut Vec<u8>, m: &Mutation) {
    if input.is_empty() {
        input.push(0);
    }
    match m {
        Mutation::Flip(i, b) => {
            let i = i.index(input.len());
            input[i] ^= 1 << b;
        }
        Mutation::Set(i, v) => {
            let i = i.index(input.len());
            input[i] = *v;
        }
        Mutation::Truncate(i) => input.truncate(i.index(input.len())),
        Mutation::Extend(v) => input.extend_from_slice(v),
        Mutation::Splice(i, v) => {
            let i = i.index(input.len());
            input.splice(i..i, v.iter().copied());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Random mutations of random seeds: the harness must never panic (it also asserts its
    /// own invariants on whatever gets through).
    #[test]
    fn mutated_seeds_never_panic(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let files = corpus();
        let mut input = files[seed.index(files.len())].1.clone();
        for m in &mutations {
            apply(&mut input, m);
        }
        let _ = Harness::new().run(&input);
    }

    /// Plain random bytes, both modes.
    #[test]
    fn random_inputs_never_panic(input in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Harness::new().run(&input);
    }
}
