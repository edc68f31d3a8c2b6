//! The decoders never panic, whatever bytes they are given: random inputs
//! and mutations of valid archives, in every format.

mod common;

use std::io::Cursor;

use proptest::prelude::*;
use snappack::convex::value::{check_document, ValueRules};
use snappack::validate::{validate, Options};

fn run(bytes: &[u8], name: &str) {
    let options = Options {
        table: Some("t".into()),
        ..Options::default()
    };
    let _ = validate(Cursor::new(bytes), name, &options, &mut |_| true);
    let _ = validate(Cursor::new(bytes), name, &Options::default(), &mut |_| true);
}

fn valid_archive() -> Vec<u8> {
    let users = [
        common::doc(10001, 1, r#""a":{"$bytes":"aGk="}"#),
        common::doc(10001, 2, r#""b":[1,2.5,"x"]"#),
    ]
    .join("\n");
    common::zip_with(
        &[
            ("_tables/documents.jsonl", br#"{"name":"users","id":10001}"#),
            ("users/documents.jsonl", users.as_bytes()),
            ("users/generated_schema.jsonl", b"\"uniform\"\n"),
        ],
        zip::CompressionMethod::Stored,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_in_every_format(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for name in ["x.zip", "x.jsonl", "x.json", "x.csv"] {
            run(&bytes, name);
        }
    }

    #[test]
    fn mutated_archives(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = valid_archive();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        run(&bytes, "m.zip");
    }

    #[test]
    fn truncated_archives(cut in any::<prop::sample::Index>()) {
        let bytes = valid_archive();
        let len = cut.index(bytes.len());
        run(&bytes[..len], "t.zip");
    }

    #[test]
    fn random_json_lines(line in "[{}\\[\\]\":,0-9a-z$_ .eE+-]{0,64}") {
        for rules in [ValueRules::Uniform, ValueRules::Plain] {
            let _ = check_document(&line, rules, 1, Some(10001));
        }
    }
}
