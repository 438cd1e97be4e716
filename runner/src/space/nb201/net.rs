//! The NAS-Bench-201 network (Dong & Yang, ICLR 2020), as the benchmark's `TinyNetwork` with
//! `InferCell`s defines it:
//!
//! * stem: 3x3 conv (no bias) to C channels + BN;
//! * three stages of N cells with C, 2C, 4C channels, separated by residual reduction blocks
//!   (ReLU-conv3x3 stride 2-BN, ReLU-conv3x3-BN; shortcut 2x2 average pool stride 2 then 1x1
//!   conv without bias);
//! * head: BN-ReLU, global average pool, linear.
//!
//! Cell ops: `nor_conv_kxk` is ReLU-Conv(no bias)-BN(affine); `avg_pool_3x3` has stride 1,
//! padding 1 and does not count padding; `skip_connect` is identity; `none` is zero. Node `j`
//! sums `op_ij(node i)` over `i < j`; the cell outputs node 3.
//!
//! Counting follows the benchmark: parameters of every op, even those execution skips;
//! multiply-adds of every conv and the linear layer (with its bias adds), BN and pooling free.
use super::arch::{Nb201Arch, Nb201Op, EDGES, EDGE_NODES};
use crate::nn::layers::{relu, Bn, Conv, ConvSpec, Linear, ReluConvBn};
use crate::nn::{CostPart, Forward, Net, NetBuilder, NetOptions};
use crate::space::SpaceError;
use tch::{nn, Tensor};

/// How `flops` counts NB201 networks: as the NAS-Bench-201 cost tables do (AutoDL-Projects'
/// `get_model_infos`, whose pooling hooks are left out of its sum).
pub const FLOPS_CONVENTION: &str = "multiply-adds of convolutions and linear layers with their \
    bias adds, for one image; BatchNorm, ReLU, pooling and additions free (the NAS-Bench-201 \
    cost tables' counter)";

/// Our variable path (the benchmark's `TinyNetwork` module paths) as the bench reference names
/// it: `stem.0` -> `stem.conv`, `cells.C.layers.E.op.1|2` -> `cells.C.edges.E.conv|bn`,
/// `conv_a|conv_b.op.1|2` -> `conv_a|conv_b.conv|bn`, `downsample.1` -> `shortcut.conv`,
/// `lastact.0` -> `head.bn`; `classifier` stays.
pub fn exchange_name(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let layer = |i: &str| match i {
        "1" => Some("conv"),
        "2" => Some("bn"),
        _ => None,
    };
    Some(match parts.as_slice() {
        ["stem", "0", leaf] => format!("stem.conv.{leaf}"),
        ["stem", "1", leaf] => format!("stem.bn.{leaf}"),
        ["cells", c, "layers", e, "op", i, leaf] => {
            format!("cells.{c}.edges.{e}.{}.{leaf}", layer(i)?)
        }
        ["cells", c, conv @ ("conv_a" | "conv_b"), "op", i, leaf] => {
            format!("cells.{c}.{conv}.{}.{leaf}", layer(i)?)
        }
        ["cells", c, "downsample", "1", leaf] => format!("cells.{c}.shortcut.conv.{leaf}"),
        ["lastact", "0", leaf] => format!("head.bn.{leaf}"),
        ["classifier", leaf] => format!("classifier.{leaf}"),
        _ => return None,
    })
}

/// One part of the network's plan: what to build at which width and input side.
#[derive(Debug, Clone, Copy)]
enum Part {
    Stem { c_in: i64, c: i64 },
    Cell { c: i64 },
    Reduction { c_in: i64, c_out: i64 },
    Head { c: i64 },
}

/// Builds NAS-Bench-201 networks of one architecture.
#[derive(Debug, Clone)]
pub struct Nb201Builder {
    pub arch: Nb201Arch,
    /// Initial channels C (16 in the benchmark).
    pub width: i64,
    /// Cells per stage N (5 in the benchmark).
    pub cells: i64,
    pub classes: i64,
    pub input_channels: i64,
    pub input_size: i64,
    /// Skip `none` edges and ops that cannot reach the cell output.
    pub prune: bool,
    /// TE-NAS's thin network (`NetBuilder::tenas_thin`): no stem, one cell, then the head.
    pub thin: bool,
}

impl Nb201Builder {
    /// Checks the options: the input side must be a multiple of 4 so that both reduction
    /// blocks' branches (stride-2 conv, 2x2 pool) agree on the output side.
    pub fn new(arch: Nb201Arch, opts: &NetOptions) -> Result<Nb201Builder, SpaceError> {
        opts.check_common()?;
        if opts.input_size % 4 != 0 {
            return Err(SpaceError::Option {
                option: "input_size",
                message: format!(
                    "NAS-Bench-201 networks halve the input twice; expected a multiple of 4, \
                     got {}",
                    opts.input_size
                ),
            });
        }
        Ok(Nb201Builder {
            arch,
            width: opts.width.unwrap_or(16),
            cells: opts.cells.unwrap_or(5),
            classes: opts.classes,
            input_channels: opts.input_channels,
            input_size: opts.input_size,
            prune: opts.prune,
            thin: false,
        })
    }

    /// TE-NAS's thin copy (its `TinyNetworkDarts` with C=1, N=1, depth 1, no stem): the
    /// cell at one channel on one-channel 3x3 inputs, then BN-ReLU, pooling and the classifier.
    pub fn thin_copy(&self) -> Nb201Builder {
        Nb201Builder {
            width: 1,
            cells: 1,
            input_channels: 1,
            input_size: 3,
            thin: true,
            ..self.clone()
        }
    }

    /// The parts in execution order with the side of their input.
    fn plan(&self) -> Vec<(Part, i64)> {
        let (c, mut h) = (self.width, self.input_size);
        if self.thin {
            return vec![(Part::Cell { c }, h), (Part::Head { c }, h)];
        }
        let mut parts = vec![(
            Part::Stem {
                c_in: self.input_channels,
                c,
            },
            h,
        )];
        for stage in 0..3 {
            let cs = c << stage;
            if stage > 0 {
                parts.push((
                    Part::Reduction {
                        c_in: cs / 2,
                        c_out: cs,
                    },
                    h,
                ));
                h /= 2;
            }
            for _ in 0..self.cells {
                parts.push((Part::Cell { c: cs }, h));
            }
        }
        parts.push((Part::Head { c: c << 2 }, h));
        parts
    }

    fn edge_spec(op: Nb201Op, c: i64) -> Option<ConvSpec> {
        match op {
            Nb201Op::NorConv3x3 => Some(ConvSpec::plain(c, c, 3, 1, 1)),
            Nb201Op::NorConv1x1 => Some(ConvSpec::plain(c, c, 1, 1, 0)),
            _ => None,
        }
    }

    fn reduction_specs(c_in: i64, c_out: i64) -> [ConvSpec; 3] {
        [
            ConvSpec::plain(c_in, c_out, 3, 2, 1),
            ConvSpec::plain(c_out, c_out, 3, 1, 1),
            ConvSpec::plain(c_in, c_out, 1, 1, 0),
        ]
    }

    /// `(output side, channels, params, flops)` of one part whose input side is `h`.
    fn cost(&self, part: Part, h: i64) -> (i64, i64, i64, i64) {
        match part {
            Part::Stem { c_in, c } => {
                let s = ConvSpec::plain(c_in, c, 3, 1, 1);
                (h, c, s.params() + Bn::params(c, true), s.flops(h))
            }
            Part::Cell { c } => {
                let (mut p, mut fl) = (0, 0);
                for op in self.arch.ops {
                    if let Some(s) = Self::edge_spec(op, c) {
                        p += ReluConvBn::params(&s, true);
                        fl += s.flops(h);
                    }
                }
                (h, c, p, fl)
            }
            Part::Reduction { c_in, c_out } => {
                let [a, b, sc] = Self::reduction_specs(c_in, c_out);
                let ho = a.out_size(h);
                let p = ReluConvBn::params(&a, true) + ReluConvBn::params(&b, true) + sc.params();
                (ho, c_out, p, a.flops(h) + b.flops(ho) + sc.flops(h / 2))
            }
            Part::Head { c } => (
                1,
                self.classes,
                Bn::params(c, true) + Linear::params(c, self.classes),
                Linear::flops(c, self.classes),
            ),
        }
    }
}

impl NetBuilder for Nb201Builder {
    fn arch(&self) -> String {
        self.arch.to_string()
    }

    fn build(&self, vs: &nn::Path) -> Box<dyn Net> {
        let mut blocks = Vec::new();
        let (mut stem, mut head) = (None, None);
        let mut cell_index = 0;
        for (part, _) in self.plan() {
            match part {
                Part::Stem { c_in, c } => {
                    let p = vs / "stem";
                    stem = Some((
                        Conv::new(&(&p / 0), ConvSpec::plain(c_in, c, 3, 1, 1)),
                        Bn::new(&(&p / 1), c, true),
                    ));
                }
                Part::Cell { c } => {
                    let p = vs / "cells" / cell_index;
                    cell_index += 1;
                    blocks.push(Block::Cell(Cell::new(&p, &self.arch, c, self.prune)));
                }
                Part::Reduction { c_in, c_out } => {
                    let p = vs / "cells" / cell_index;
                    cell_index += 1;
                    let [a, b, sc] = Self::reduction_specs(c_in, c_out);
                    blocks.push(Block::Reduction {
                        conv_a: ReluConvBn::new(&(&p / "conv_a"), a, true),
                        conv_b: ReluConvBn::new(&(&p / "conv_b"), b, true),
                        shortcut: Conv::new(&(&p / "downsample" / 1), sc),
                    });
                }
                Part::Head { c } => {
                    head = Some((
                        Bn::new(&(vs / "lastact" / 0), c, true),
                        Linear::new(&(vs / "classifier"), c, self.classes),
                    ));
                }
            }
        }
        // The plan always holds a head (and a stem unless thin).
        let (head_bn, classifier) = head.expect("plan has a head");
        Box::new(Nb201Net {
            stem,
            blocks,
            head_bn,
            classifier,
        })
    }

    fn param_count(&self) -> i64 {
        self.breakdown().iter().map(|p| p.params).sum()
    }

    fn flops(&self) -> i64 {
        self.breakdown().iter().map(|p| p.flops).sum()
    }

    fn has_learnable_ops(&self) -> bool {
        self.arch.has_learnable_ops()
    }

    fn num_classes(&self) -> i64 {
        self.classes
    }

    fn input_shape(&self) -> (i64, i64, i64) {
        (self.input_channels, self.input_size, self.input_size)
    }

    fn exchange_name(&self, path: &str) -> Option<String> {
        exchange_name(path)
    }

    fn tenas_thin(&self) -> Option<Box<dyn NetBuilder>> {
        Some(Box::new(self.thin_copy()))
    }

    fn breakdown(&self) -> Vec<CostPart> {
        let (mut cell, mut red) = (0, 0);
        self.plan()
            .into_iter()
            .map(|(part, h)| {
                let name = match part {
                    Part::Stem { .. } => "stem".to_string(),
                    Part::Cell { .. } => {
                        cell += 1;
                        format!("cell{}", cell - 1)
                    }
                    Part::Reduction { .. } => {
                        red += 1;
                        format!("reduction{red}")
                    }
                    Part::Head { .. } => "head".to_string(),
                };
                let (size, channels, params, flops) = self.cost(part, h);
                CostPart {
                    name,
                    size,
                    channels,
                    params,
                    flops,
                }
            })
            .collect()
    }
}

// Built once per network; boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
enum EdgeOp {
    Zero,
    Skip,
    Conv(ReluConvBn),
    Pool,
}

struct Cell {
    ops: Vec<EdgeOp>,
    /// Edges to execute: all when unpruned, else the live ones.
    run: [bool; EDGES],
    /// Nodes to compute: all when unpruned, else the output and the sources of run edges.
    needed: [bool; 4],
}

impl Cell {
    fn new(p: &nn::Path, arch: &Nb201Arch, c: i64, prune: bool) -> Cell {
        let ops = arch
            .ops
            .iter()
            .enumerate()
            .map(|(e, &op)| match op {
                Nb201Op::None => EdgeOp::Zero,
                Nb201Op::SkipConnect => EdgeOp::Skip,
                Nb201Op::AvgPool3x3 => EdgeOp::Pool,
                Nb201Op::NorConv1x1 | Nb201Op::NorConv3x3 => {
                    let spec =
                        Nb201Builder::edge_spec(op, c).unwrap_or(ConvSpec::plain(c, c, 1, 1, 0));
                    EdgeOp::Conv(ReluConvBn::new(&(p / "layers" / e), spec, true))
                }
            })
            .collect();
        let run = if prune {
            arch.live_edges()
        } else {
            [true; EDGES]
        };
        let mut needed = [!prune, !prune, !prune, true];
        for (e, &(_, from)) in EDGE_NODES.iter().enumerate() {
            needed[from] |= run[e];
        }
        Cell { ops, run, needed }
    }

    fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        let mut nodes: [Option<Tensor>; 4] = [Some(x.shallow_clone()), None, None, None];
        let mut relued: [Option<Tensor>; 4] = [None, None, None, None];
        let record_node = |node: &Tensor, f: &mut Forward| {
            if let (true, Some(v)) = (f.cell_node_relus, f.relu_inputs.as_mut()) {
                v.push(node.shallow_clone());
            }
        };
        record_node(x, f);
        for to in 1..4 {
            if !(self.needed[to] || f.all_ops) {
                continue;
            }
            let mut acc: Option<Tensor> = None;
            for (e, &(t, from)) in EDGE_NODES.iter().enumerate() {
                if t != to || !(self.run[e] || f.all_ops) {
                    continue;
                }
                // The source of a run edge is needed, so it was computed before.
                let Some(input) = nodes[from].as_ref() else {
                    continue;
                };
                let y = match &self.ops[e] {
                    EdgeOp::Zero => input * 0.0,
                    EdgeOp::Skip => input.shallow_clone(),
                    EdgeOp::Pool => input.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None),
                    EdgeOp::Conv(op) => {
                        let r = relued[from].get_or_insert_with(|| input.relu());
                        op.forward_relued(input, r, f)
                    }
                };
                acc = Some(match acc {
                    None => y,
                    Some(a) => a + y,
                });
            }
            // A node fed only by `none` edges is exactly zero.
            let node = acc.unwrap_or_else(|| x.zeros_like());
            if to < 3 {
                record_node(&node, f); // nodes 1 and 2 feed edges; node 3 is the output
            }
            nodes[to] = Some(node);
        }
        nodes[3].take().unwrap_or_else(|| x.zeros_like())
    }
}

// Built once per network; boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
enum Block {
    Cell(Cell),
    Reduction {
        conv_a: ReluConvBn,
        conv_b: ReluConvBn,
        shortcut: Conv,
    },
}

struct Nb201Net {
    /// Absent in TE-NAS's thin network.
    stem: Option<(Conv, Bn)>,
    blocks: Vec<Block>,
    head_bn: Bn,
    classifier: Linear,
}

impl Net for Nb201Net {
    fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        let mut h = match &self.stem {
            Some((conv, bn)) => bn.forward(&conv.forward(x, f), f),
            None => x.shallow_clone(),
        };
        for b in &self.blocks {
            h = match b {
                Block::Cell(c) => c.forward(&h, f),
                Block::Reduction {
                    conv_a,
                    conv_b,
                    shortcut,
                } => {
                    let main = conv_b.forward(&conv_a.forward(&h, f), f);
                    let pooled = h.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None);
                    shortcut.forward(&pooled, f) + main
                }
            };
        }
        let feat = relu(&self.head_bn.forward(&h, f), f);
        let pooled = feat.mean_dim([2i64, 3].as_slice(), false, feat.kind());
        f.features = Some(feat);
        self.classifier.forward(&pooled, f)
    }

    fn classifier_weight(&self) -> Tensor {
        self.classifier.weight.shallow_clone()
    }
}
