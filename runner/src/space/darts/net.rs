//! DARTS evaluation networks (Liu et al., ICLR 2019, `model.py` of the authors' code).
//!
//! * CIFAR: stem 3x3 conv to 3C + BN; `layers` cells (C=36, 20), reductions at layers/3 and
//!   2*layers/3 doubling the channels; auxiliary head after the second reduction (ReLU, 5x5
//!   avg pool stride 3, 1x1 conv 128 + BN + ReLU, 2x2 conv 768 + BN + ReLU, linear).
//! * ImageNet: stem0 = conv 3x3 s2 to C/2, BN, ReLU, conv 3x3 s2 to C, BN; stem1 = ReLU, conv
//!   3x3 s2, BN (stride 4 before the cells, 8 with stem1); C=48, 14 cells; auxiliary head with
//!   a stride-2 pool and no BN after the 768 conv, as in the authors' code.
//!
//! A cell preprocesses its two inputs to C channels (factorized reduce for the first when the
//! previous cell reduced, else ReLU-conv1x1-BN), runs each node's two ops, drop-path on
//! non-identity ops in training, and concatenates its `concat` states. Global average pool and
//! a linear classifier follow the last cell. The auxiliary head is excluded from `param_count`
//! and `flops`, as the DARTS paper counts. `flops` follows [`FLOPS_CONVENTION`].
use super::genotype::{CellGenotype, Genotype};
use super::ops::{LSpec, Op, OpSpec};
use crate::nn::layers::{ConvSpec, Linear};
use crate::nn::{CostPart, DartsNetKind, Forward, Net, NetBuilder, NetOptions};
use crate::space::SpaceError;
use tch::{nn, Kind, Tensor};

/// Builds DARTS evaluation networks of one genotype.
#[derive(Debug, Clone)]
pub struct DartsBuilder {
    pub genotype: Genotype,
    pub kind: DartsNetKind,
    /// Initial channels C.
    pub width: i64,
    /// Number of cells.
    pub layers: i64,
    pub classes: i64,
    pub input_channels: i64,
    pub input_size: i64,
    pub auxiliary: bool,
}

/// Static plan of one cell.
#[derive(Debug, Clone)]
struct CellPlan {
    reduction: bool,
    pre0: OpSpec,
    pre1: OpSpec,
    /// `(op, input state)`.
    ops: Vec<(OpSpec, usize)>,
    concat: Vec<usize>,
    /// Sides of the two inputs and of the output.
    h_pp: i64,
    h_p: i64,
    h_out: i64,
    /// Channels of the two inputs, of each node (C) and of the output.
    c_pp: i64,
    c_p: i64,
    c: i64,
    c_out: i64,
}

impl CellPlan {
    /// `(parameters, FLOPs)` in the space's convention ([`FLOPS_CONVENTION`]).
    fn cost(&self) -> (i64, i64) {
        let mut params = self.pre0.params() + self.pre1.params();
        let mut flops =
            ops_flops(&self.pre0, self.h_pp, self.c_pp) + ops_flops(&self.pre1, self.h_p, self.c_p);
        for (op, input) in &self.ops {
            params += op.params();
            let h = if self.reduction && *input >= 2 {
                self.h_out
            } else {
                self.h_p
            };
            flops += ops_flops(op, h, self.c);
        }
        (params, flops)
    }
}

/// How `flops` counts DARTS networks: the convention whose totals P-DARTS (557M) and PC-DARTS
/// (597M) report for their ImageNet networks, that of the `ptflops` counter. DARTS' own 574M
/// for DARTS_V2 is reproduced by no convention found (its counter was never published; see
/// runner/tests/spaces_darts.rs).
pub const FLOPS_CONVENTION: &str = "multiply-adds of convolutions and linear layers plus one \
    operation per ReLU output and pooling input element and two per BatchNorm input element \
    (the ptflops counter, whose totals the P-DARTS and PC-DARTS papers report), for one image, \
    auxiliary head excluded";

/// One op's FLOPs for one image of side `h` with `c` input channels.
fn ops_flops(op: &OpSpec, h: i64, c: i64) -> i64 {
    op.cost(h).0 + op.elementwise(h, c)
}

/// The classifier after global average pooling of `c` maps of side `h`: the pooling's input
/// elements and the linear layer's `c * classes` multiply-adds (the counter counts no bias).
fn head_flops(c: i64, h: i64, classes: i64) -> i64 {
    c * h * h + c * classes
}

/// Static plan of the whole network.
struct Plan {
    /// ImageNet has two stems; CIFAR one (its output feeds both first inputs).
    stems: Vec<(OpSpec, i64)>,
    cells: Vec<CellPlan>,
    aux: Option<(usize, OpSpec, i64, i64)>,
    c_last: i64,
    /// Side of the last cell's output.
    h_last: i64,
}

impl DartsBuilder {
    pub fn new(genotype: Genotype, opts: &NetOptions) -> Result<DartsBuilder, SpaceError> {
        opts.check_common()?;
        let imagenet = opts.darts_kind == DartsNetKind::ImageNet;
        let b = DartsBuilder {
            genotype,
            kind: opts.darts_kind,
            width: opts.width.unwrap_or(if imagenet { 48 } else { 36 }),
            layers: opts.cells.unwrap_or(if imagenet { 14 } else { 20 }),
            classes: opts.classes,
            input_channels: opts.input_channels,
            input_size: opts.input_size,
            auxiliary: opts.auxiliary,
        };
        if b.layers < 3 {
            return Err(SpaceError::Option {
                option: "cells",
                message: format!("a DARTS network needs at least 3 cells, got {}", b.layers),
            });
        }
        if b.width % 2 != 0 {
            return Err(SpaceError::Option {
                option: "width",
                message: format!(
                    "factorized reduce halves the channels; expected an even width, got {}",
                    b.width
                ),
            });
        }
        // Factorized reduce needs an even side wherever it halves (stem outputs, reductions).
        let m = if imagenet { 32 } else { 4 };
        if b.input_size % m != 0 {
            return Err(SpaceError::Option {
                option: "input_size",
                message: format!(
                    "the {:?} network halves the input {} times; expected a multiple of {m}, got {}",
                    b.kind,
                    if imagenet { 5 } else { 2 },
                    b.input_size
                ),
            });
        }
        if b.auxiliary {
            let plan = b.plan();
            if let Some((i, _, h, _)) = plan.aux {
                let pooled = (h - 5) / if imagenet { 2 } else { 3 } + 1;
                if h < 5 || pooled != 2 {
                    return Err(SpaceError::Option {
                        option: "auxiliary",
                        message: format!(
                            "the auxiliary head expects a feature map that pools to 2x2, but \
                             cell {i} outputs {h}x{h} at input size {}",
                            b.input_size
                        ),
                    });
                }
            }
        }
        Ok(b)
    }

    fn cell_genotype(&self, reduction: bool) -> &CellGenotype {
        if reduction {
            &self.genotype.reduce
        } else {
            &self.genotype.normal
        }
    }

    fn plan(&self) -> Plan {
        let imagenet = self.kind == DartsNetKind::ImageNet;
        let (c, h0) = (self.width, self.input_size);
        let conv = |ci, co, s| LSpec::Conv(ConvSpec::plain(ci, co, 3, s, 1));
        let mut stems = Vec::new();
        let (mut c_pp, mut c_p, mut h_pp, mut h_p, mut reduction_prev);
        if imagenet {
            let s0 = OpSpec::Seq(vec![
                conv(self.input_channels, c / 2, 2),
                LSpec::Bn(c / 2),
                LSpec::Relu,
                conv(c / 2, c, 2),
                LSpec::Bn(c),
            ]);
            let h1 = s0.cost(h0).1;
            let s1 = OpSpec::Seq(vec![LSpec::Relu, conv(c, c, 2), LSpec::Bn(c)]);
            let h2 = s1.cost(h1).1;
            stems.push((s0, h0));
            stems.push((s1, h1));
            (c_pp, c_p, h_pp, h_p, reduction_prev) = (c, c, h1, h2, true);
        } else {
            let cs = 3 * c;
            stems.push((
                OpSpec::Seq(vec![conv(self.input_channels, cs, 1), LSpec::Bn(cs)]),
                h0,
            ));
            (c_pp, c_p, h_pp, h_p, reduction_prev) = (cs, cs, h0, h0, false);
        }
        let mut c_cur = c;
        let mut cells = Vec::new();
        let mut aux = None;
        let n = self.layers;
        for i in 0..n {
            let reduction = i == n / 3 || i == 2 * n / 3;
            if reduction {
                c_cur *= 2;
            }
            let pre0 = if reduction_prev {
                OpSpec::FactorizedReduce {
                    c_in: c_pp,
                    c_out: c_cur,
                }
            } else {
                OpSpec::relu_conv_bn(c_pp, c_cur, 1, 1, 0)
            };
            let pre1 = OpSpec::relu_conv_bn(c_p, c_cur, 1, 1, 0);
            let g = self.cell_genotype(reduction);
            let ops = g
                .edges
                .iter()
                .map(|&(op, input)| {
                    let stride = if reduction && input < 2 { 2 } else { 1 };
                    (OpSpec::for_op(op, c_cur, stride), input)
                })
                .collect();
            let h_out = if reduction { (h_p - 1) / 2 + 1 } else { h_p };
            let c_out = g.concat.len() as i64 * c_cur;
            cells.push(CellPlan {
                reduction,
                pre0,
                pre1,
                ops,
                concat: g.concat.clone(),
                h_pp,
                h_p,
                h_out,
                c_pp,
                c_p,
                c: c_cur,
                c_out,
            });
            (c_pp, c_p, h_pp, h_p, reduction_prev) = (c_p, c_out, h_p, h_out, reduction);
            if i == 2 * n / 3 {
                let stride = if imagenet { 2 } else { 3 };
                let mut head = vec![
                    LSpec::Relu,
                    LSpec::AvgPool {
                        kernel: 5,
                        stride,
                        padding: 0,
                    },
                    LSpec::Conv(ConvSpec::plain(c_out, 128, 1, 1, 0)),
                    LSpec::Bn(128),
                    LSpec::Relu,
                    LSpec::Conv(ConvSpec::plain(128, 768, 2, 1, 0)),
                ];
                if !imagenet {
                    head.push(LSpec::Bn(768));
                }
                head.push(LSpec::Relu);
                aux = Some((i as usize, OpSpec::Seq(head), h_out, c_out));
            }
        }
        Plan {
            stems,
            cells,
            aux,
            c_last: c_p,
            h_last: h_p,
        }
    }

    /// Parameters of the auxiliary head (0 when it is not built).
    pub fn aux_params(&self) -> i64 {
        match (self.auxiliary, self.plan().aux) {
            (true, Some((_, head, _, _))) => head.params() + Linear::params(768, self.classes),
            _ => 0,
        }
    }

    /// Multiply-adds of the auxiliary head for one image (0 when it is not built).
    pub fn aux_flops(&self) -> i64 {
        match (self.auxiliary, self.plan().aux) {
            (true, Some((_, head, h, c))) => ops_flops(&head, h, c) + 768 * self.classes,
            _ => 0,
        }
    }
}

/// The reference's name (bench/reference/darts.py, CIFAR networks) for a layer of a `Seq` op
/// at position `k`: a separable convolution there is two nested blocks of four layers.
fn seq_layer_name(op: &OpSpec, k: usize) -> String {
    match op {
        OpSpec::Seq(ls) if ls.len() == 8 => format!("{}.{}", k / 4, k % 4),
        _ => k.to_string(),
    }
}

impl NetBuilder for DartsBuilder {
    fn arch(&self) -> String {
        self.genotype.to_string()
    }

    /// Our variable path (the DARTS authors' module paths) as bench/reference/darts.py names
    /// it: `stem0.op.K` -> `stem.K`, `cells.I.preprocess0|1` -> `cells.I.pre0|pre1`,
    /// `cells.I._ops.J` -> `cells.I.ops.J`, `auxiliary_head` -> `aux`, a `Seq` op's `op.K` ->
    /// `K` (separable convolutions: `K/4.K%4`). CIFAR networks only: the reference has no
    /// ImageNet one.
    fn exchange_name(&self, path: &str) -> Option<String> {
        if self.kind != DartsNetKind::Cifar {
            return None;
        }
        let parts: Vec<&str> = path.split('.').collect();
        let plan = self.plan();
        let seq = |op: &OpSpec, k: &str| k.parse().ok().map(|k| seq_layer_name(op, k));
        Some(match parts.as_slice() {
            ["stem0", "op", k, leaf] => format!("stem.{k}.{leaf}"),
            ["cells", i, pre @ ("preprocess0" | "preprocess1"), rest @ ..] => {
                let cell = plan.cells.get(i.parse::<usize>().ok()?)?;
                let (name, op) = match *pre {
                    "preprocess0" => ("pre0", &cell.pre0),
                    _ => ("pre1", &cell.pre1),
                };
                match rest {
                    ["op", k, leaf] => format!("cells.{i}.{name}.{}.{leaf}", seq(op, k)?),
                    [layer, leaf] => format!("cells.{i}.{name}.{layer}.{leaf}"),
                    _ => return None,
                }
            }
            ["cells", i, "_ops", j, rest @ ..] => {
                let cell = plan.cells.get(i.parse::<usize>().ok()?)?;
                let (op, _) = cell.ops.get(j.parse::<usize>().ok()?)?;
                match rest {
                    ["op", k, leaf] => format!("cells.{i}.ops.{j}.{}.{leaf}", seq(op, k)?),
                    [layer, leaf] => format!("cells.{i}.ops.{j}.{layer}.{leaf}"),
                    _ => return None,
                }
            }
            ["auxiliary_head", "features", "op", k, leaf] => format!("aux.features.{k}.{leaf}"),
            ["auxiliary_head", "classifier", leaf] => format!("aux.classifier.{leaf}"),
            ["classifier", leaf] => format!("classifier.{leaf}"),
            _ => return None,
        })
    }

    fn build(&self, vs: &nn::Path) -> Box<dyn Net> {
        let plan = self.plan();
        let stems = plan
            .stems
            .iter()
            .enumerate()
            .map(|(i, (s, _))| s.build(&(vs / format!("stem{i}"))))
            .collect();
        let cells = plan
            .cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let p = vs / "cells" / i;
                Cell {
                    pre0: c.pre0.build(&(&p / "preprocess0")),
                    pre1: c.pre1.build(&(&p / "preprocess1")),
                    ops: c
                        .ops
                        .iter()
                        .enumerate()
                        .map(|(j, (o, input))| (o.build(&(&p / "_ops" / j)), *input))
                        .collect(),
                    concat: c.concat.clone(),
                }
            })
            .collect();
        let aux = match (self.auxiliary, plan.aux) {
            (true, Some((i, head, _, _))) => {
                let p = vs / "auxiliary_head";
                Some((
                    i,
                    head.build(&(&p / "features")),
                    Linear::new(&(&p / "classifier"), 768, self.classes),
                ))
            }
            _ => None,
        };
        let classifier = Linear::new(&(vs / "classifier"), plan.c_last, self.classes);
        Box::new(DartsNet {
            stems,
            cells,
            aux,
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
        // Preprocessing convs always learn, whatever the cells hold.
        true
    }

    fn num_classes(&self) -> i64 {
        self.classes
    }

    fn input_shape(&self) -> (i64, i64, i64) {
        (self.input_channels, self.input_size, self.input_size)
    }

    fn breakdown(&self) -> Vec<CostPart> {
        let plan = self.plan();
        let mut parts = Vec::new();
        for (i, (s, h)) in plan.stems.iter().enumerate() {
            let c_in = if i == 0 {
                self.input_channels
            } else {
                self.width
            };
            let (size, flops) = (s.cost(*h).1, ops_flops(s, *h, c_in));
            let channels = if i == 0 && self.kind == DartsNetKind::Cifar {
                3 * self.width
            } else {
                self.width
            };
            parts.push(CostPart {
                name: format!("stem{i}"),
                size,
                channels,
                params: s.params(),
                flops,
            });
        }
        for (i, c) in plan.cells.iter().enumerate() {
            let (params, flops) = c.cost();
            let kind = if c.reduction { "reduction" } else { "normal" };
            parts.push(CostPart {
                name: format!("cell{i}_{kind}"),
                size: c.h_out,
                channels: c.c_out,
                params,
                flops,
            });
        }
        parts.push(CostPart {
            name: "head".into(),
            size: 1,
            channels: self.classes,
            params: Linear::params(plan.c_last, self.classes),
            flops: head_flops(plan.c_last, plan.h_last, self.classes),
        });
        parts
    }
}

struct Cell {
    pre0: Op,
    pre1: Op,
    ops: Vec<(Op, usize)>,
    concat: Vec<usize>,
}

/// Zeroes whole samples with probability `f.drop_path_prob` and rescales the rest by 1/(1-p);
/// the mask is drawn from libtorch's generator unless the forward pass replays given ones.
fn drop_path(x: &Tensor, f: &mut Forward) -> Tensor {
    let keep = 1.0 - f.drop_path_prob;
    let mask = match f.drop_path_masks.as_mut() {
        Some(given) => given
            .pop_front()
            .expect("a replayed forward pass is given one drop-path mask per dropped op output"),
        None => {
            Tensor::empty([x.size()[0], 1, 1, 1], (Kind::Float, x.device())).bernoulli_float_(keep)
        }
    };
    x / keep * mask.to_kind(x.kind())
}

impl Cell {
    fn forward(&self, s0: &Tensor, s1: &Tensor, f: &mut Forward) -> Tensor {
        let mut states = Vec::with_capacity(2 + self.ops.len() / 2);
        states.push(self.pre0.forward(s0, f));
        states.push(self.pre1.forward(s1, f));
        let drop = f.train && f.drop_path_prob > 0.0;
        for pair in self.ops.chunks(2) {
            let mut sum: Option<Tensor> = None;
            for (op, input) in pair {
                let mut h = op.forward(&states[*input], f);
                if drop && !op.is_identity() {
                    h = drop_path(&h, f);
                }
                sum = Some(match sum {
                    None => h,
                    Some(s) => s + h,
                });
            }
            if let Some(s) = sum {
                states.push(s);
            }
        }
        let out: Vec<&Tensor> = self.concat.iter().map(|&i| &states[i]).collect();
        Tensor::cat(&out, 1)
    }
}

struct DartsNet {
    stems: Vec<Op>,
    cells: Vec<Cell>,
    aux: Option<(usize, Op, Linear)>,
    classifier: Linear,
}

impl Net for DartsNet {
    fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        let (mut s0, mut s1) = match self.stems.as_slice() {
            [stem] => {
                let s = stem.forward(x, f);
                (s.shallow_clone(), s)
            }
            [stem0, stem1, ..] => {
                let a = stem0.forward(x, f);
                let b = stem1.forward(&a, f);
                (a, b)
            }
            [] => (x.shallow_clone(), x.shallow_clone()),
        };
        for (i, cell) in self.cells.iter().enumerate() {
            let next = cell.forward(&s0, &s1, f);
            s0 = std::mem::replace(&mut s1, next);
            if let Some((at, head, lin)) = &self.aux {
                if *at == i && f.train {
                    let a = head.forward(&s1, f).flatten(1, -1);
                    f.aux_logits = Some(lin.forward(&a, f));
                }
            }
        }
        let pooled = s1.mean_dim([2i64, 3].as_slice(), false, s1.kind());
        f.features = Some(s1);
        self.classifier.forward(&pooled, f)
    }

    fn classifier_weight(&self) -> Tensor {
        self.classifier.weight.shallow_clone()
    }
}
