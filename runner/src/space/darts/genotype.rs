//! DARTS genotypes (Liu, Simonyan & Yang, ICLR 2019).
//!
//! A genotype has a normal and a reduction cell. Each cell has two inputs (the outputs of the
//! two previous cells, states 0 and 1) and `steps` intermediate nodes (4 in the DARTS space,
//! states 2..6); node `k` sums two ops applied to earlier states, listed as `(op, input)` pairs,
//! two per node. The cell outputs the channel concatenation of the states in its `concat` list.
//!
//! Accepted forms: the textual `Genotype(normal=[('sep_conv_3x3', 0), ...],
//! normal_concat=range(2, 6), reduce=[...], reduce_concat=[2, 3, 4, 5])`, JSON
//! `{"normal": [["sep_conv_3x3", 0], ...], "normal_concat": [2, 3, 4, 5], ...}` and the names of
//! [`NAMED`].
use crate::space::SpaceError;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

const SPACE: &str = "darts";

/// Operations a genotype may use: the DARTS primitives, plus `sep_conv_7x7` so that NASNet
/// can be written down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DartsOp {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "max_pool_3x3")]
    MaxPool3x3,
    #[serde(rename = "avg_pool_3x3")]
    AvgPool3x3,
    #[serde(rename = "skip_connect")]
    SkipConnect,
    #[serde(rename = "sep_conv_3x3")]
    SepConv3x3,
    #[serde(rename = "sep_conv_5x5")]
    SepConv5x5,
    #[serde(rename = "sep_conv_7x7")]
    SepConv7x7,
    #[serde(rename = "dil_conv_3x3")]
    DilConv3x3,
    #[serde(rename = "dil_conv_5x5")]
    DilConv5x5,
}

impl DartsOp {
    /// Every op a genotype may name.
    pub const ALL: [DartsOp; 9] = [
        DartsOp::None,
        DartsOp::MaxPool3x3,
        DartsOp::AvgPool3x3,
        DartsOp::SkipConnect,
        DartsOp::SepConv3x3,
        DartsOp::SepConv5x5,
        DartsOp::SepConv7x7,
        DartsOp::DilConv3x3,
        DartsOp::DilConv5x5,
    ];

    /// The ops random sampling and mutation draw from: the DARTS primitives without `none`.
    pub const SEARCH: [DartsOp; 7] = [
        DartsOp::MaxPool3x3,
        DartsOp::AvgPool3x3,
        DartsOp::SkipConnect,
        DartsOp::SepConv3x3,
        DartsOp::SepConv5x5,
        DartsOp::DilConv3x3,
        DartsOp::DilConv5x5,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DartsOp::None => "none",
            DartsOp::MaxPool3x3 => "max_pool_3x3",
            DartsOp::AvgPool3x3 => "avg_pool_3x3",
            DartsOp::SkipConnect => "skip_connect",
            DartsOp::SepConv3x3 => "sep_conv_3x3",
            DartsOp::SepConv5x5 => "sep_conv_5x5",
            DartsOp::SepConv7x7 => "sep_conv_7x7",
            DartsOp::DilConv3x3 => "dil_conv_3x3",
            DartsOp::DilConv5x5 => "dil_conv_5x5",
        }
    }

    pub fn from_name(s: &str) -> Option<DartsOp> {
        DartsOp::ALL.into_iter().find(|o| o.name() == s)
    }
}

/// One cell: `(op, input state)` pairs, two per intermediate node, and the concatenated states.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CellGenotype {
    pub edges: Vec<(DartsOp, usize)>,
    pub concat: Vec<usize>,
}

impl CellGenotype {
    /// Number of intermediate nodes.
    pub fn steps(&self) -> usize {
        self.edges.len() / 2
    }

    fn validate(&self, which: &str) -> Result<(), SpaceError> {
        let inv = |message: String| SpaceError::Invalid {
            space: SPACE,
            message,
        };
        if self.edges.is_empty() || !self.edges.len().is_multiple_of(2) {
            return Err(inv(format!(
                "{which}: expected a non-empty, even number of (op, input) pairs (two per node), \
                 got {}",
                self.edges.len()
            )));
        }
        for (i, &(_, input)) in self.edges.iter().enumerate() {
            let state = i / 2 + 2;
            if input >= state {
                return Err(inv(format!(
                    "{which}[{i}]: node {state} may read states 0..{}, got input {input}",
                    state - 1
                )));
            }
        }
        let states = self.steps() + 2;
        if self.concat.is_empty() {
            return Err(inv(format!("{which}_concat: expected at least one state")));
        }
        for (k, &s) in self.concat.iter().enumerate() {
            if s >= states {
                return Err(inv(format!(
                    "{which}_concat[{k}]: expected a state below {states}, got {s}"
                )));
            }
            if self.concat[..k].contains(&s) {
                return Err(inv(format!(
                    "{which}_concat[{k}]: state {s} is listed twice"
                )));
            }
        }
        Ok(())
    }

    /// DARTS rules: 4 nodes, each with two distinct inputs, no `none`, concat of the 4 nodes.
    pub fn follows_darts_rules(&self) -> bool {
        self.steps() == 4
            && self.edges.len() == 8
            && self.edges.chunks(2).all(|p| p[0].1 != p[1].1)
            && self
                .edges
                .iter()
                .all(|e| e.0 != DartsOp::None && e.0 != DartsOp::SepConv7x7)
            && self.concat == vec![2, 3, 4, 5]
    }

    fn sample<R: Rng + ?Sized>(rng: &mut R) -> CellGenotype {
        let mut edges = Vec::with_capacity(8);
        for node in 0..4 {
            let states = node + 2;
            let a = rng.random_range(0..states);
            let mut b = rng.random_range(0..states - 1);
            if b >= a {
                b += 1;
            }
            for input in [a, b] {
                edges.push((
                    DartsOp::SEARCH[rng.random_range(0..DartsOp::SEARCH.len())],
                    input,
                ));
            }
        }
        CellGenotype {
            edges,
            concat: vec![2, 3, 4, 5],
        }
    }

    fn mutate<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        let i = rng.random_range(0..self.edges.len());
        let state = i / 2 + 2;
        let sibling = self.edges[i ^ 1].1;
        let inputs: Vec<usize> = (0..state)
            .filter(|&s| s != sibling && s != self.edges[i].1)
            .collect();
        if rng.random_bool(0.5) && !inputs.is_empty() {
            self.edges[i].1 = inputs[rng.random_range(0..inputs.len())];
        } else {
            let ops: Vec<DartsOp> = DartsOp::SEARCH
                .into_iter()
                .filter(|&o| o != self.edges[i].0)
                .collect();
            self.edges[i].0 = ops[rng.random_range(0..ops.len())];
        }
    }
}

/// A DARTS genotype.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Genotype {
    pub normal: CellGenotype,
    pub reduce: CellGenotype,
}

/// Named genotypes from the literature, in the textual form of their authors' code.
pub const NAMED: [(&str, &str); 5] = [
    (
        "DARTS_V1",
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), \
         ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), \
         ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), \
         ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), \
         ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], \
         reduce_concat=[2, 3, 4, 5])",
    ),
    (
        "DARTS_V2",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), \
         ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), \
         ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), \
         ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), \
         ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], \
         reduce_concat=[2, 3, 4, 5])",
    ),
    (
        "PC_DARTS",
        "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), \
         ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), \
         ('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), \
         ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), \
         ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], \
         reduce_concat=range(2, 6))",
    ),
    (
        "PDARTS",
        "Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0), \
         ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), \
         ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), \
         ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 0), \
         ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)], \
         reduce_concat=range(2, 6))",
    ),
    (
        "NASNet",
        "Genotype(normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), \
         ('sep_conv_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 0), ('avg_pool_3x3', 0), \
         ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1)], \
         normal_concat=[2, 3, 4, 5, 6], reduce=[('sep_conv_5x5', 1), ('sep_conv_7x7', 0), \
         ('max_pool_3x3', 1), ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('sep_conv_5x5', 0), \
         ('skip_connect', 3), ('avg_pool_3x3', 2), ('sep_conv_3x3', 2), ('max_pool_3x3', 1)], \
         reduce_concat=[4, 5, 6])",
    ),
];

/// The JSON form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenotypeJson {
    normal: Vec<(DartsOp, usize)>,
    #[serde(default)]
    normal_concat: Option<Vec<usize>>,
    reduce: Vec<(DartsOp, usize)>,
    #[serde(default)]
    reduce_concat: Option<Vec<usize>>,
}

impl Genotype {
    /// A named genotype (case-insensitive; `-` and `_` alike), JSON, or the textual form.
    pub fn resolve(s: &str) -> Result<Genotype, SpaceError> {
        let t = s.trim();
        if t.starts_with('{') {
            return Genotype::from_json(t);
        }
        if t.starts_with("Genotype") {
            return super::text::parse(t);
        }
        Genotype::named(t)
    }

    /// One of [`NAMED`].
    pub fn named(name: &str) -> Result<Genotype, SpaceError> {
        let norm = |n: &str| n.to_ascii_uppercase().replace('-', "_");
        let want = norm(name);
        match NAMED.iter().find(|(n, _)| norm(n) == want) {
            Some((_, text)) => super::text::parse(text),
            None => Err(SpaceError::Invalid {
                space: SPACE,
                message: format!(
                    "unknown genotype `{name}`: expected one of {}, a JSON object or \
                     `Genotype(...)`",
                    NAMED.iter().map(|n| n.0).collect::<Vec<_>>().join(", ")
                ),
            }),
        }
    }

    /// Builds and validates a genotype; `None` concat lists mean all intermediate nodes.
    pub fn new(
        normal: Vec<(DartsOp, usize)>,
        normal_concat: Option<Vec<usize>>,
        reduce: Vec<(DartsOp, usize)>,
        reduce_concat: Option<Vec<usize>>,
    ) -> Result<Genotype, SpaceError> {
        let all = |e: &Vec<(DartsOp, usize)>| (2..e.len() / 2 + 2).collect::<Vec<_>>();
        let normal_concat = normal_concat.unwrap_or_else(|| all(&normal));
        let reduce_concat = reduce_concat.unwrap_or_else(|| all(&reduce));
        let g = Genotype {
            normal: CellGenotype {
                edges: normal,
                concat: normal_concat,
            },
            reduce: CellGenotype {
                edges: reduce,
                concat: reduce_concat,
            },
        };
        g.normal.validate("normal")?;
        g.reduce.validate("reduce")?;
        Ok(g)
    }

    pub fn from_json(s: &str) -> Result<Genotype, SpaceError> {
        let j: GenotypeJson = serde_json::from_str(s).map_err(|e| SpaceError::Parse {
            space: SPACE,
            pos: json_offset(s, e.line(), e.column()),
            expected: "a JSON genotype {\"normal\": [[op, input], ...], \"normal_concat\": \
                       [...], \"reduce\": [...], \"reduce_concat\": [...]}"
                .into(),
            found: e.to_string(),
        })?;
        Genotype::new(j.normal, j.normal_concat, j.reduce, j.reduce_concat)
    }

    pub fn to_json(&self) -> String {
        let j = GenotypeJson {
            normal: self.normal.edges.clone(),
            normal_concat: Some(self.normal.concat.clone()),
            reduce: self.reduce.edges.clone(),
            reduce_concat: Some(self.reduce.concat.clone()),
        };
        serde_json::to_string(&j).unwrap_or_default()
    }

    /// Both cells follow the DARTS rules (see [`CellGenotype::follows_darts_rules`]).
    pub fn follows_darts_rules(&self) -> bool {
        self.normal.follows_darts_rules() && self.reduce.follows_darts_rules()
    }

    /// A uniform random genotype under the DARTS rules: every node picks two distinct earlier
    /// states and an op (not `none`) for each.
    pub fn sample<R: Rng + ?Sized>(rng: &mut R) -> Genotype {
        Genotype {
            normal: CellGenotype::sample(rng),
            reduce: CellGenotype::sample(rng),
        }
    }

    /// `n` genotypes from a ChaCha8 generator seeded by `seed`.
    pub fn sample_n(n: usize, seed: u64) -> Vec<Genotype> {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| Genotype::sample(&mut rng)).collect()
    }

    /// Evolutionary mutation: in one cell (normal or reduction, equally likely), one edge gets
    /// either another input (distinct from its sibling's) or another op, equally likely; where
    /// no other input is allowed (the first node) the op changes.
    pub fn mutate<R: Rng + ?Sized>(&self, rng: &mut R) -> Genotype {
        let mut g = self.clone();
        if rng.random_bool(0.5) {
            g.normal.mutate(rng);
        } else {
            g.reduce.mutate(rng);
        }
        g
    }
}

/// 0-based character offset of serde_json's 1-based line and column.
fn json_offset(s: &str, line: usize, column: usize) -> usize {
    let before: usize = s
        .split('\n')
        .take(line.saturating_sub(1))
        .map(|l| l.chars().count() + 1)
        .sum();
    before + column.saturating_sub(1)
}

impl fmt::Display for Genotype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn edges(c: &CellGenotype) -> String {
            let v: Vec<String> = c
                .edges
                .iter()
                .map(|(o, i)| format!("('{}', {i})", o.name()))
                .collect();
            format!("[{}]", v.join(", "))
        }
        fn concat(c: &CellGenotype) -> String {
            let contiguous = c.concat.windows(2).all(|w| w[1] == w[0] + 1);
            match (contiguous, c.concat.first(), c.concat.last()) {
                (true, Some(a), Some(b)) if c.concat.len() > 1 => format!("range({a}, {})", b + 1),
                _ => {
                    let v: Vec<String> = c.concat.iter().map(|s| s.to_string()).collect();
                    format!("[{}]", v.join(", "))
                }
            }
        }
        write!(
            f,
            "Genotype(normal={}, normal_concat={}, reduce={}, reduce_concat={})",
            edges(&self.normal),
            concat(&self.normal),
            edges(&self.reduce),
            concat(&self.reduce)
        )
    }
}
