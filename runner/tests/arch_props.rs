//! Property tests (a brief fuzzing run in every CI, a long one with `scripts/fuzz.sh`) of the
//! parsers of architectures and of staged data: NB201 strings, DARTS genotypes (names, the
//! textual `Genotype(...)`, JSON) and the staged split's `index.json`. Each damages the valid
//! inputs of the corpus in `tests/corpus/` (a staged split is made here by `stage_data`) and
//! must answer with a value or an error, never a panic and never an allocation beyond the bound
//! of `fuzz_util`; what parses must parse again to itself.
mod fuzz_util;
mod train_util;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use fuzz_util::{bounded, cases, read_all};
use nas_api::spec::SpaceName;
use nas_runner::data::stage::{stage_data, StageConfig};
use nas_runner::data::Split;
use nas_runner::nn::NetOptions;
use nas_runner::space::{for_name, SearchSpace};
use nas_runner::store::LocalStore;
use proptest::prelude::*;

/// The corpus files of one space, as text.
fn corpus(space: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(space);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().trim().to_string())
        .collect()
}

/// Every architecture of the corpus, with its space.
static CORPUS: LazyLock<Vec<(SpaceName, String)>> = LazyLock::new(|| {
    let mut all = Vec::new();
    for space in SpaceName::ALL {
        all.extend(corpus(space.as_str()).into_iter().map(|t| (space, t)));
    }
    all
});

/// `text` with character edits: (position, replacement or deletion, or an insertion of a
/// digit run, which is how a length or index field grows).
fn damaged(text: &str, edits: &[(usize, Edit)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, edit) in edits {
        if chars.is_empty() {
            break;
        }
        let at = at % chars.len();
        match edit {
            Edit::Replace(c) => chars[at] = *c,
            Edit::Delete => {
                chars.remove(at);
            }
            Edit::Insert(s) => {
                chars.splice(at..at, s.chars());
            }
        }
    }
    chars.into_iter().collect()
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(char),
    Delete,
    Insert(String),
}

fn edits() -> impl Strategy<Value = Vec<(usize, Edit)>> {
    let edit = prop_oneof![
        prop_oneof![
            Just('|'),
            Just('~'),
            Just('+'),
            Just(','),
            Just('('),
            Just(')'),
            Just('['),
            Just(']'),
            Just('"'),
            Just('\''),
            Just('9'),
            Just('-'),
            any::<char>()
        ]
        .prop_map(Edit::Replace),
        Just(Edit::Delete),
        "[0-9]{1,22}".prop_map(Edit::Insert),
        "(range\\(2, [0-9]{1,20}\\)|none|skip_connect|sep_conv_3x3|, 0\\)|\\], )"
            .prop_map(Edit::Insert),
    ];
    prop::collection::vec((any::<usize>(), edit), 1..6)
}

/// Parses `text` in `space`; what parses must be canonical (parsing it again gives itself) and
/// must have a network whose costs can be counted without building it.
fn parse_checked(space: &dyn SearchSpace, text: &str) -> Result<(), TestCaseError> {
    let parsed = bounded(text, text.len(), || space.canonical(text));
    if let Ok(canonical) = parsed {
        let again = space.canonical(&canonical);
        prop_assert_eq!(
            again.as_deref().ok(),
            Some(canonical.as_str()),
            "{:?}",
            again
        );
        let opts = NetOptions::default();
        if let Ok(b) = bounded(&canonical, canonical.len(), || {
            space.builder(&canonical, &opts)
        }) {
            prop_assert!(b.param_count() > 0 && b.flops() >= 0);
            // The network's own spelling (DARTS: the Python text) names the same architecture.
            prop_assert_eq!(space.canonical(&b.arch()).ok(), Some(canonical));
        }
    }
    Ok(())
}

/// A staged CIFAR-style split (4 shards of generated JPEGs): the template each case damages.
static STAGED: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    train_util::write_folder(&raw, "train", &train_util::cifar_jpegs(2));
    let config = StageConfig {
        images_per_shard: 6,
        chunk: 8,
        progress: false,
        scatter_bytes: 0,
        ..Default::default()
    };
    let store = LocalStore::new(tmp.path().join("staged"));
    stage_data(
        raw.to_str().unwrap(),
        Split::Train,
        &store,
        "train",
        &config,
    )
    .unwrap();
    tmp
});

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    #[test]
    fn damaged_architectures_parse_to_themselves_or_fail_cleanly(
        which in any::<prop::sample::Index>(),
        e in edits(),
    ) {
        let (space, text) = which.get(&CORPUS);
        parse_checked(for_name(*space), &damaged(text, &e))?;
    }

    #[test]
    fn arbitrary_text_is_no_architecture_of_either_space_or_a_canonical_one(s in ".{0,200}") {
        for space in nas_runner::space::SPACES {
            parse_checked(space, &s)?;
        }
    }

    #[test]
    fn damaged_shard_indexes_never_panic_nor_trust_their_counts(e in edits()) {
        let template = STAGED.path().join("staged");
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&template, dir.path());
        let index = dir.path().join("train/index.json");
        let text = std::fs::read_to_string(&index).unwrap();
        std::fs::write(&index, damaged(&text, &e)).unwrap();
        read_all(dir.path());
    }
}

#[test]
fn the_corpus_parses() {
    for space in SpaceName::ALL {
        let texts: Vec<_> = CORPUS.iter().filter(|(s, _)| *s == space).collect();
        assert!(texts.len() >= 3, "{space:?}: corpus too small");
        for (_, t) in texts {
            for_name(space)
                .canonical(t)
                .unwrap_or_else(|e| panic!("{space:?} corpus `{t}`: {e}"));
        }
    }
}

#[test]
fn the_allocation_check_sees_an_allocation_beyond_its_bound() {
    let (v, largest) = fuzz_util::largest_allocation(|| vec![1u8; 64 << 20]);
    assert_eq!(v.len(), 64 << 20);
    assert!(largest >= 64 << 20, "{largest}");
    assert!(largest > fuzz_util::allocation_bound(1024));
}
