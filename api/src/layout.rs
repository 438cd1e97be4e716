//! The artifact key layout under one search's prefix (DESIGN.md, "Artifact layout").
//!
//! Every key a stage reads or writes comes from one function here, so the operator, the runner
//! and the tests agree on it. Keys are relative to the bucket (or the local folder) and carry the
//! search's UID, so a re-created search of the same name never sees the old one's artifacts.
use crate::contract::Stage;
use thiserror::Error;

/// Name of the marker a unit of work writes last; a unit that has it is skipped on retry.
pub const SUCCESS_MARKER: &str = "_SUCCESS";

/// Every key relative to a search's root: the one place each is spelled. The runner's stages
/// use these on a store rooted at the search; [`SearchPrefix`] prefixes them for the bucket.
pub mod key {
    use super::SUCCESS_MARKER;

    /// The resolved spec, written once by the operator (or by `nas-runner local`).
    pub const SPEC: &str = "spec.json";
    /// The sampled architectures, in order, written once.
    pub const CANDIDATES: &str = "candidates.jsonl";
    /// List prefix of every data split.
    pub const DATA_DIR: &str = "data/";
    /// List prefix of the score stage's objects.
    pub const SCORE_DIR: &str = "score/";
    /// List prefix of every score shard's objects.
    pub const SCORE_SHARDS: &str = "score/shard-";
    /// Every candidate, in rank order.
    pub const SELECT_RANKING: &str = "select/ranking.jsonl";
    pub const SELECT_TOPK: &str = "select/topk.json";
    pub const SELECT_SUCCESS: &str = "select/_SUCCESS";
    /// List prefix of every finalist's folder.
    pub const TRAIN_DIR: &str = "train/";
    /// Folder of the final training's checkpoints (no trailing `/`).
    pub const EVAL_CHECKPOINTS: &str = "eval/checkpoints";
    pub const EVAL_REPORT: &str = "eval/report.json";
    pub const EVAL_SUCCESS: &str = "eval/_SUCCESS";
    pub const SUMMARY: &str = "summary.json";
    /// The report's table of every scored candidate.
    pub const CANDIDATES_TABLE: &str = "candidates.csv";
    pub const REPORT_MD: &str = "report.md";
    pub const REPORT_HTML: &str = "report.html";
    /// List prefix of the plots.
    pub const PLOTS: &str = "plots/";
    /// At the root: the report stage, the last one, is done.
    pub const REPORT_SUCCESS: &str = SUCCESS_MARKER;

    /// `data/{split}` (no trailing `/`): the split's packed shards and `index.json`.
    pub fn data_split(split: &str) -> String {
        format!("{DATA_DIR}{split}")
    }
    /// `data/{split}/index.json`.
    pub fn data_index(split: &str) -> String {
        format!("{DATA_DIR}{split}/index.json")
    }
    /// `data/{split}/_SUCCESS`.
    pub fn data_success(split: &str) -> String {
        format!("{DATA_DIR}{split}/{SUCCESS_MARKER}")
    }
    /// `score/shard-00007.jsonl`.
    pub fn score_shard(shard: u32) -> String {
        format!("{SCORE_SHARDS}{shard:05}.jsonl")
    }
    /// `score/shard-00007._SUCCESS`, written after the shard's records.
    pub fn score_shard_success(shard: u32) -> String {
        format!("{SCORE_SHARDS}{shard:05}.{SUCCESS_MARKER}")
    }
    /// `score/shard-00007.partial.jsonl`: the records a stopped pod of an unfinished shard kept
    /// for the shard's next pod; deleted once the shard is done.
    pub fn score_shard_partial(shard: u32) -> String {
        format!("{SCORE_SHARDS}{shard:05}.partial.jsonl")
    }
    /// `train/{candidate}` (no trailing `/`): one finalist's folder.
    pub fn train_dir(candidate: &str) -> String {
        format!("{TRAIN_DIR}{candidate}")
    }
    /// `train/{candidate}/metrics.json`.
    pub fn train_metrics(candidate: &str) -> String {
        format!("{TRAIN_DIR}{candidate}/metrics.json")
    }
    /// `train/{candidate}/checkpoints` (no trailing `/`).
    pub fn train_checkpoints(candidate: &str) -> String {
        format!("{TRAIN_DIR}{candidate}/checkpoints")
    }
    /// `train/{candidate}/_SUCCESS`.
    pub fn train_success(candidate: &str) -> String {
        format!("{TRAIN_DIR}{candidate}/{SUCCESS_MARKER}")
    }
    /// `{checkpoints}/epoch-00123.pt`; zero-padded so that listing order is epoch order.
    pub fn checkpoint(checkpoints: &str, epoch: u32) -> String {
        format!("{checkpoints}/epoch-{epoch:05}.pt")
    }
    /// `plots/{file}`.
    pub fn plot(file: &str) -> String {
        format!("{PLOTS}{file}")
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} '{value}' is not a valid key component: {reason}")]
    BadComponent {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("key '{key}' is not a search prefix key: expected {expected}")]
    NotASearchKey { key: String, expected: &'static str },
}

/// `[{prefix}/]{namespace}/{name}/{uid}`: the one spelling of a search's root key, without a
/// trailing `/` (`prefix` is trimmed of `/`; the parts are not checked, see [`SearchPrefix`]).
pub fn search_root(prefix: &str, namespace: &str, name: &str, uid: &str) -> String {
    let prefix = prefix.trim_matches('/');
    let tail = format!("{namespace}/{name}/{uid}");
    if prefix.is_empty() {
        tail
    } else {
        format!("{prefix}/{tail}")
    }
}

/// `{prefix}/{namespace}/{name}/{uid}`: the root of one search's artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchPrefix {
    prefix: String,
    namespace: String,
    name: String,
    uid: String,
}

impl SearchPrefix {
    /// `prefix` may be empty or hold several `/`-separated components; the others are single
    /// components (Kubernetes names and UIDs are).
    pub fn new(prefix: &str, namespace: &str, name: &str, uid: &str) -> Result<Self, LayoutError> {
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            for c in prefix.split('/') {
                check_component("prefix", c)?;
            }
        }
        check_component("namespace", namespace)?;
        check_component("name", name)?;
        check_component("uid", uid)?;
        Ok(SearchPrefix {
            prefix: prefix.into(),
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
        })
    }

    /// Recovers the prefix from the key of any object directly under the search root, e.g. the
    /// `spec.json` key the runner is given: `p/q/ns/name/uid/spec.json`.
    pub fn from_object_key(key: &str, file: &str) -> Result<Self, LayoutError> {
        const EXPECTED: &str = "[{prefix}/]{namespace}/{name}/{uid}/<file>";
        let not = || LayoutError::NotASearchKey {
            key: key.into(),
            expected: EXPECTED,
        };
        let root = key.trim_matches('/').strip_suffix(file).ok_or_else(not)?;
        let root = root.strip_suffix('/').ok_or_else(not)?;
        let mut parts = root.rsplitn(4, '/');
        let uid = parts.next().ok_or_else(not)?;
        let name = parts.next().ok_or_else(not)?;
        let namespace = parts.next().ok_or_else(not)?;
        let prefix = parts.next().unwrap_or("");
        SearchPrefix::new(prefix, namespace, name, uid)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The search root, without a trailing `/`.
    pub fn root(&self) -> String {
        search_root(&self.prefix, &self.namespace, &self.name, &self.uid)
    }

    fn key(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root())
    }

    /// `spec.json`: the resolved spec, written once by the operator.
    pub fn spec(&self) -> String {
        self.key(key::SPEC)
    }

    /// `data/{split}/`: packed shards and their index (with a trailing `/`, a list prefix).
    pub fn data_dir(&self, split: &str) -> Result<String, LayoutError> {
        check_component("split", split)?;
        Ok(self.key(&format!("{}/", key::data_split(split))))
    }

    /// `data/{split}/{file}`: one packed shard or the split's index.
    pub fn data_file(&self, split: &str, file: &str) -> Result<String, LayoutError> {
        check_component("file", file)?;
        Ok(format!("{}{file}", self.data_dir(split)?))
    }

    /// `data/{split}/_SUCCESS`.
    pub fn data_success(&self, split: &str) -> Result<String, LayoutError> {
        self.data_file(split, SUCCESS_MARKER)
    }

    /// `candidates.jsonl`: the sampled architectures, in order, written once.
    pub fn candidates(&self) -> String {
        self.key(key::CANDIDATES)
    }

    /// `score/`: list prefix of all shards.
    pub fn score_dir(&self) -> String {
        self.key(key::SCORE_DIR)
    }

    /// `score/shard-00007.jsonl`.
    pub fn score_shard(&self, shard: u32) -> String {
        self.key(&key::score_shard(shard))
    }

    /// `score/shard-00007._SUCCESS`, written after the shard's records.
    pub fn score_shard_success(&self, shard: u32) -> String {
        self.key(&key::score_shard_success(shard))
    }

    /// `score/shard-00007.partial.jsonl`: the records a stopped pod of an unfinished shard
    /// kept for the shard's next pod; deleted once the shard is done.
    pub fn score_shard_partial(&self, shard: u32) -> String {
        self.key(&key::score_shard_partial(shard))
    }

    /// `select/ranking.jsonl`: every candidate, in rank order.
    pub fn select_ranking(&self) -> String {
        self.key(key::SELECT_RANKING)
    }

    /// `select/topk.json`.
    pub fn select_topk(&self) -> String {
        self.key(key::SELECT_TOPK)
    }

    /// `select/_SUCCESS`.
    pub fn select_success(&self) -> String {
        self.key(key::SELECT_SUCCESS)
    }

    /// `train/{candidate}/`: one finalist's folder.
    pub fn train_dir(&self, candidate: &str) -> Result<String, LayoutError> {
        check_component("candidate", candidate)?;
        Ok(self.key(&format!("{}/", key::train_dir(candidate))))
    }

    /// `train/{candidate}/metrics.json`.
    pub fn train_metrics(&self, candidate: &str) -> Result<String, LayoutError> {
        Ok(format!("{}metrics.json", self.train_dir(candidate)?))
    }

    /// `train/{candidate}/checkpoints/epoch-00012.pt`.
    pub fn train_checkpoint(&self, candidate: &str, epoch: u32) -> Result<String, LayoutError> {
        check_component("candidate", candidate)?;
        Ok(self.key(&key::checkpoint(&key::train_checkpoints(candidate), epoch)))
    }

    /// `train/{candidate}/_SUCCESS`.
    pub fn train_success(&self, candidate: &str) -> Result<String, LayoutError> {
        Ok(format!("{}{SUCCESS_MARKER}", self.train_dir(candidate)?))
    }

    /// `eval/checkpoints/`: list prefix of the final training's checkpoints.
    pub fn eval_checkpoints_dir(&self) -> String {
        self.key(&format!("{}/", key::EVAL_CHECKPOINTS))
    }

    /// `eval/checkpoints/epoch-00123.pt`; zero-padded so that listing order is epoch order.
    pub fn eval_checkpoint(&self, epoch: u32) -> String {
        self.key(&key::checkpoint(key::EVAL_CHECKPOINTS, epoch))
    }

    /// `eval/report.json`.
    pub fn eval_report(&self) -> String {
        self.key(key::EVAL_REPORT)
    }

    /// `eval/_SUCCESS`.
    pub fn eval_success(&self) -> String {
        self.key(key::EVAL_SUCCESS)
    }

    /// `summary.json`.
    pub fn summary(&self) -> String {
        self.key(key::SUMMARY)
    }

    /// `candidates.csv`: the report's table of every scored candidate.
    pub fn candidates_table(&self) -> String {
        self.key(key::CANDIDATES_TABLE)
    }

    /// `report.md`.
    pub fn report_md(&self) -> String {
        self.key(key::REPORT_MD)
    }

    /// `report.html`: the self-contained report page.
    pub fn report_html(&self) -> String {
        self.key(key::REPORT_HTML)
    }

    /// `plots/{file}`.
    pub fn plot(&self, file: &str) -> Result<String, LayoutError> {
        check_component("plot file", file)?;
        Ok(self.key(&key::plot(file)))
    }

    /// `_SUCCESS` at the root: the report stage, the last one, is done.
    pub fn report_success(&self) -> String {
        self.key(key::REPORT_SUCCESS)
    }

    /// The marker of one unit of a stage: `index` is the shard (score) or the finalist's
    /// candidate index (train), ignored by the other stages; `split` names data's split.
    pub fn stage_success(
        &self,
        stage: Stage,
        index: u32,
        split: &str,
    ) -> Result<String, LayoutError> {
        Ok(match stage {
            Stage::StageData => self.data_success(split)?,
            Stage::Score => self.score_shard_success(index),
            Stage::Select => self.select_success(),
            Stage::Train => self.train_success(&candidate_name(u64::from(index)))?,
            Stage::Evaluate => self.eval_success(),
            Stage::Report => self.report_success(),
        })
    }
}

/// The folder name of candidate `index` (its line in `candidates.jsonl`): `cand-000042`.
pub fn candidate_name(index: u64) -> String {
    format!("cand-{index:06}")
}

fn check_component(field: &'static str, value: &str) -> Result<(), LayoutError> {
    let bad = |reason| {
        Err(LayoutError::BadComponent {
            field,
            value: value.into(),
            reason,
        })
    };
    if value.is_empty() {
        return Err(LayoutError::Empty { field });
    }
    if value == "." || value == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if value.contains('/') || value.contains('\\') {
        return bad("must not contain '/' or '\\'");
    }
    if value.chars().any(char::is_control) {
        return bad("must not contain control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search() -> SearchPrefix {
        SearchPrefix::new("runs/", "team-a", "c10", "0b6c-11ef").unwrap()
    }

    #[test]
    fn keys_follow_the_design_layout() {
        let s = search();
        let r = "runs/team-a/c10/0b6c-11ef";
        assert_eq!(s.root(), r);
        assert_eq!(s.spec(), format!("{r}/spec.json"));
        assert_eq!(
            s.data_success("train").unwrap(),
            format!("{r}/data/train/_SUCCESS")
        );
        assert_eq!(
            s.data_file("val", "shard-0.bin").unwrap(),
            format!("{r}/data/val/shard-0.bin")
        );
        assert_eq!(s.candidates(), format!("{r}/candidates.jsonl"));
        assert_eq!(s.score_shard(7), format!("{r}/score/shard-00007.jsonl"));
        assert_eq!(
            s.score_shard_partial(7),
            format!("{r}/score/shard-00007.partial.jsonl")
        );
        assert_eq!(
            s.score_shard_success(7),
            format!("{r}/score/shard-00007._SUCCESS")
        );
        assert_eq!(s.select_ranking(), format!("{r}/select/ranking.jsonl"));
        assert_eq!(s.select_topk(), format!("{r}/select/topk.json"));
        let c = candidate_name(42);
        assert_eq!(
            s.train_metrics(&c).unwrap(),
            format!("{r}/train/cand-000042/metrics.json")
        );
        assert_eq!(
            s.train_checkpoint(&c, 3).unwrap(),
            format!("{r}/train/cand-000042/checkpoints/epoch-00003.pt")
        );
        assert_eq!(
            s.eval_checkpoint(12),
            format!("{r}/eval/checkpoints/epoch-00012.pt")
        );
        assert_eq!(s.eval_report(), format!("{r}/eval/report.json"));
        assert_eq!(s.summary(), format!("{r}/summary.json"));
        assert_eq!(s.report_md(), format!("{r}/report.md"));
        assert_eq!(s.plot("ranks.svg").unwrap(), format!("{r}/plots/ranks.svg"));
        assert_eq!(
            s.stage_success(Stage::Train, 42, "").unwrap(),
            s.train_success(&c).unwrap()
        );
    }

    #[test]
    fn empty_prefix_has_no_leading_slash() {
        let s = SearchPrefix::new("", "ns", "n", "u").unwrap();
        assert_eq!(s.spec(), "ns/n/u/spec.json");
    }

    #[test]
    fn shard_keys_sort_in_shard_order() {
        let s = search();
        let mut keys: Vec<String> = [10u32, 2, 100, 1]
            .iter()
            .map(|&i| s.score_shard(i))
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [1u32, 2, 10, 100]
                .iter()
                .map(|&i| s.score_shard(i))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn rejects_bad_components() {
        assert_eq!(
            SearchPrefix::new("", "", "n", "u"),
            Err(LayoutError::Empty { field: "namespace" })
        );
        assert!(matches!(
            SearchPrefix::new("a/../b", "ns", "n", "u"),
            Err(LayoutError::BadComponent {
                field: "prefix",
                ..
            })
        ));
        assert!(matches!(
            SearchPrefix::new("", "ns", "a/b", "u"),
            Err(LayoutError::BadComponent { field: "name", .. })
        ));
        assert!(search().train_dir("../x").is_err());
        assert!(search().plot("a/b.png").is_err());
    }

    #[test]
    fn recovers_prefix_from_spec_key() {
        let s = search();
        assert_eq!(
            SearchPrefix::from_object_key(&s.spec(), "spec.json").unwrap(),
            s
        );
        let bare = SearchPrefix::new("", "ns", "n", "u").unwrap();
        assert_eq!(
            SearchPrefix::from_object_key("ns/n/u/spec.json", "spec.json").unwrap(),
            bare
        );
        assert!(SearchPrefix::from_object_key("n/u/spec.json", "spec.json").is_err());
        assert!(SearchPrefix::from_object_key("ns/n/u/other.json", "spec.json").is_err());
    }
}
