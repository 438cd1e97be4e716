//! NAS-Bench-201 cell architectures (Dong & Yang, ICLR 2020).
//!
//! A cell is a DAG of four nodes; node `j` sums `op_ij(node i)` over `i < j`, so there are six
//! edges, each one of five ops, 5^6 = 15,625 cells. The text form lists the edges into node
//! 1, 2, 3 in turn: `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.
use crate::space::SpaceError;
use rand::Rng;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

const SPACE: &str = "nb201";

/// Number of edges of a cell.
pub const EDGES: usize = 6;
/// Number of architectures of the space.
pub const SIZE: usize = 15_625;

/// `(to, from)` node of each edge, in the order of the text form.
pub const EDGE_NODES: [(usize, usize); EDGES] = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];

/// One candidate operation of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Nb201Op {
    None,
    SkipConnect,
    NorConv1x1,
    NorConv3x3,
    AvgPool3x3,
}

impl Nb201Op {
    /// All ops, in the benchmark's order.
    pub const ALL: [Nb201Op; 5] = [
        Nb201Op::None,
        Nb201Op::SkipConnect,
        Nb201Op::NorConv1x1,
        Nb201Op::NorConv3x3,
        Nb201Op::AvgPool3x3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Nb201Op::None => "none",
            Nb201Op::SkipConnect => "skip_connect",
            Nb201Op::NorConv1x1 => "nor_conv_1x1",
            Nb201Op::NorConv3x3 => "nor_conv_3x3",
            Nb201Op::AvgPool3x3 => "avg_pool_3x3",
        }
    }

    pub fn from_name(s: &str) -> Option<Nb201Op> {
        Nb201Op::ALL.into_iter().find(|o| o.name() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One NAS-Bench-201 cell: the op of each edge in [`EDGE_NODES`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nb201Arch {
    pub ops: [Nb201Op; EDGES],
}

impl Nb201Arch {
    /// The op on the edge `from -> to`, if such an edge exists.
    pub fn op(&self, to: usize, from: usize) -> Option<Nb201Op> {
        EDGE_NODES
            .iter()
            .position(|&e| e == (to, from))
            .map(|i| self.ops[i])
    }

    /// Number of 3x3 and of 1x1 convolution edges `(n3, n1)`.
    pub fn conv_counts(&self) -> (usize, usize) {
        let n3 = self
            .ops
            .iter()
            .filter(|&&o| o == Nb201Op::NorConv3x3)
            .count();
        let n1 = self
            .ops
            .iter()
            .filter(|&&o| o == Nb201Op::NorConv1x1)
            .count();
        (n3, n1)
    }

    /// Position in this crate's enumeration (edge 0 the least significant base-5 digit, ops in
    /// [`Nb201Op::ALL`] order). Not the benchmark's index: use [`Nb201Table`] for that.
    pub fn enum_index(&self) -> usize {
        self.ops.iter().rev().fold(0, |acc, o| acc * 5 + o.index())
    }

    /// Inverse of [`Nb201Arch::enum_index`]; `None` when `i >= 15,625`.
    pub fn from_enum_index(mut i: usize) -> Option<Nb201Arch> {
        if i >= SIZE {
            return None;
        }
        let mut ops = [Nb201Op::None; EDGES];
        for op in ops.iter_mut() {
            *op = Nb201Op::ALL[i % 5];
            i /= 5;
        }
        Some(Nb201Arch { ops })
    }

    /// Every architecture of the space, in enumeration order.
    pub fn all() -> impl Iterator<Item = Nb201Arch> {
        (0..SIZE).filter_map(Nb201Arch::from_enum_index)
    }

    /// Uniform random architecture.
    pub fn sample<R: Rng + ?Sized>(rng: &mut R) -> Nb201Arch {
        let mut ops = [Nb201Op::None; EDGES];
        for op in ops.iter_mut() {
            *op = Nb201Op::ALL[rng.random_range(0..5)];
        }
        Nb201Arch { ops }
    }

    /// `n` architectures drawn uniformly with replacement from a ChaCha8 generator seeded by
    /// `seed` (the same seed gives the same list on every machine).
    pub fn sample_n(n: usize, seed: u64) -> Vec<Nb201Arch> {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| Nb201Arch::sample(&mut rng)).collect()
    }

    /// The evolutionary-search mutation of the benchmark's REA: one uniformly chosen edge gets a
    /// different op, chosen uniformly among the other four.
    pub fn mutate<R: Rng + ?Sized>(&self, rng: &mut R) -> Nb201Arch {
        let mut out = *self;
        let e = rng.random_range(0..EDGES);
        let shift = rng.random_range(1..5);
        out.ops[e] = Nb201Op::ALL[(self.ops[e].index() + shift) % 5];
        out
    }

    /// False when every edge is `none` or `skip_connect`: the network then has no conv or pool
    /// in its cells and cannot learn features.
    pub fn has_learnable_ops(&self) -> bool {
        self.ops
            .iter()
            .any(|o| !matches!(o, Nb201Op::None | Nb201Op::SkipConnect))
    }

    /// Edges whose op runs when execution is pruned: not `none`, and the edge's target node
    /// reaches the cell output (node 3) through non-`none` edges.
    pub fn live_edges(&self) -> [bool; EDGES] {
        let mut reaches = [false, false, false, true];
        for node in (0..3).rev() {
            reaches[node] = EDGE_NODES
                .iter()
                .zip(self.ops)
                .any(|(&(to, from), op)| from == node && op != Nb201Op::None && reaches[to]);
        }
        let mut live = [false; EDGES];
        for (e, &(to, _)) in EDGE_NODES.iter().enumerate() {
            live[e] = self.ops[e] != Nb201Op::None && reaches[to];
        }
        live
    }

    /// A key shared by exactly the cells that compute the same function up to the order of
    /// summation, following the benchmark's own rule (its `to_unique_str(consider_zero=True)`):
    /// `skip_connect` passes its input's expression through; `none`, or any op applied to a
    /// lone `none` result, is the zero term `#`; a node is the sorted `+` of its terms. The
    /// 15,625 cells fall into 6,466 classes.
    pub fn canonical_key(&self) -> String {
        let mut nodes: Vec<String> = vec!["0".to_string()];
        for to in 1..4 {
            let mut terms: Vec<String> = EDGE_NODES
                .iter()
                .zip(self.ops)
                .filter(|(&(t, _), _)| t == to)
                .map(|(&(_, from), op)| {
                    let input = &nodes[from];
                    match op {
                        Nb201Op::None => "#".to_string(),
                        _ if input == "#" => "#".to_string(),
                        Nb201Op::SkipConnect => input.clone(),
                        _ => format!("({input})@{}", op.name()),
                    }
                })
                .collect();
            terms.sort();
            nodes.push(terms.join("+"));
        }
        nodes.pop().unwrap_or_default()
    }
}

impl fmt::Display for Nb201Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for to in 1..4 {
            if to > 1 {
                f.write_str("+")?;
            }
            f.write_str("|")?;
            for (e, &(t, from)) in EDGE_NODES.iter().enumerate() {
                if t == to {
                    write!(f, "{}~{}|", self.ops[e].name(), from)?;
                }
            }
        }
        Ok(())
    }
}

/// A cursor over the characters of an architecture string that reports positions in errors.
struct Cursor {
    chars: Vec<char>,
    pos: usize,
}

impl Cursor {
    fn err(&self, expected: impl Into<String>) -> SpaceError {
        let found = match self.chars.get(self.pos) {
            Some(c) => format!("'{}'", c.escape_debug()),
            None => "end of input".to_string(),
        };
        SpaceError::Parse {
            space: SPACE,
            pos: self.pos,
            expected: expected.into(),
            found,
        }
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), SpaceError> {
        if self.chars.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }
}

const OP_NAMES: &str = "an op (none, skip_connect, nor_conv_1x1, nor_conv_3x3 or avg_pool_3x3)";

impl FromStr for Nb201Arch {
    type Err = SpaceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut c = Cursor {
            chars: s.chars().collect(),
            pos: 0,
        };
        let mut ops = [Nb201Op::None; EDGES];
        let mut e = 0;
        for to in 1..4 {
            if to > 1 {
                c.expect('+', &format!("'+' before the edges into node {to}"))?;
            }
            c.expect('|', &format!("'|' opening the edges into node {to}"))?;
            for from in 0..to {
                let start = c.pos;
                while c
                    .chars
                    .get(c.pos)
                    .is_some_and(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                {
                    c.pos += 1;
                }
                let name: String = c.chars[start..c.pos].iter().collect();
                let Some(op) = Nb201Op::from_name(&name) else {
                    let found = if name.is_empty() {
                        match c.chars.get(start) {
                            Some(ch) => format!("'{}'", ch.escape_debug()),
                            None => "end of input".to_string(),
                        }
                    } else {
                        format!("'{name}'")
                    };
                    return Err(SpaceError::Parse {
                        space: SPACE,
                        pos: start,
                        expected: format!("{OP_NAMES} for edge {from}->{to}"),
                        found,
                    });
                };
                c.expect('~', &format!("'~' after op '{name}'"))?;
                let digit = char::from_digit(from as u32, 10).unwrap_or('0');
                c.expect(digit, &format!("input node {from} of node {to}"))?;
                c.expect('|', &format!("'|' after edge {from}->{to}"))?;
                ops[e] = op;
                e += 1;
            }
        }
        if c.pos != c.chars.len() {
            return Err(c.err("end of input after node 3"));
        }
        Ok(Nb201Arch { ops })
    }
}

/// Benchmark index <-> architecture, read from a CSV table whose first two columns are
/// `index,arch` (like `nb201/accuracy.csv`); any further columns are kept as named numbers.
#[derive(Debug, Clone, Default)]
pub struct Nb201Table {
    archs: Vec<Nb201Arch>,
    by_arch: HashMap<Nb201Arch, usize>,
    columns: Vec<String>,
    values: Vec<Vec<f64>>,
}

impl Nb201Table {
    /// Reads a table; rows may come in any order but indices must be unique.
    pub fn from_csv(path: &Path) -> Result<Nb201Table, SpaceError> {
        let p = path.display().to_string();
        let terr = |message: String| SpaceError::Table {
            path: p.clone(),
            message,
        };
        let mut rdr = csv::Reader::from_path(path).map_err(|e| terr(e.to_string()))?;
        let headers = rdr.headers().map_err(|e| terr(e.to_string()))?.clone();
        if headers.get(0) != Some("index") || headers.get(1) != Some("arch") {
            return Err(terr(
                "expected the header to start with `index,arch`".into(),
            ));
        }
        let columns: Vec<String> = headers.iter().skip(2).map(str::to_string).collect();
        let mut rows: Vec<(usize, Nb201Arch, Vec<f64>)> = Vec::new();
        for (line, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| terr(e.to_string()))?;
            let row = line + 2;
            let idx: usize = rec
                .get(0)
                .unwrap_or("")
                .trim()
                .parse()
                .map_err(|_| terr(format!("line {row}: column `index` is not an integer")))?;
            let arch: Nb201Arch = rec
                .get(1)
                .unwrap_or("")
                .trim()
                .parse()
                .map_err(|e| terr(format!("line {row}: {e}")))?;
            let mut vals = Vec::with_capacity(columns.len());
            for (k, col) in columns.iter().enumerate() {
                let v = rec.get(k + 2).unwrap_or("").trim();
                vals.push(v.parse().map_err(|_| {
                    terr(format!("line {row}: column `{col}`: `{v}` is not a number"))
                })?);
            }
            rows.push((idx, arch, vals));
        }
        rows.sort_by_key(|r| r.0);
        let mut t = Nb201Table {
            columns,
            ..Default::default()
        };
        for (want, (idx, arch, vals)) in rows.into_iter().enumerate() {
            if idx != want {
                return Err(terr(format!(
                    "indices must be 0..n without gaps or repeats; index {want} is missing or \
                     repeated"
                )));
            }
            if t.by_arch.insert(arch, idx).is_some() {
                return Err(terr(format!("architecture {arch} appears twice")));
            }
            t.archs.push(arch);
            t.values.push(vals);
        }
        Ok(t)
    }

    pub fn len(&self) -> usize {
        self.archs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.archs.is_empty()
    }

    /// The architecture at benchmark index `i`.
    pub fn arch(&self, i: usize) -> Option<Nb201Arch> {
        self.archs.get(i).copied()
    }

    /// The benchmark index of an architecture.
    pub fn index(&self, a: &Nb201Arch) -> Option<usize> {
        self.by_arch.get(a).copied()
    }

    /// Names of the value columns after `index,arch`.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The value of column `col` for benchmark index `i`.
    pub fn value(&self, i: usize, col: &str) -> Option<f64> {
        let k = self.columns.iter().position(|c| c == col)?;
        self.values.get(i).map(|v| v[k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_benchmark_form() {
        let s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
        let a: Nb201Arch = s.parse().unwrap();
        assert_eq!(a.to_string(), s);
        assert_eq!(a.conv_counts(), (3, 0));
    }

    #[test]
    fn enum_index_round_trips() {
        for i in [0, 1, 4, 5, 624, 15_624] {
            assert_eq!(Nb201Arch::from_enum_index(i).unwrap().enum_index(), i);
        }
        assert!(Nb201Arch::from_enum_index(SIZE).is_none());
    }

    #[test]
    fn live_edges_drop_dead_ends() {
        // node 1 feeds only node 2, and node 2 has a `none` edge into node 3: edges into 1 and
        // 2 are dead.
        let a: Nb201Arch =
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|none~2|"
                .parse()
                .unwrap();
        assert_eq!(a.live_edges(), [false, false, false, true, false, false]);
    }
}
