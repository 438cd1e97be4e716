//! DARTS operations as static specs (for counting) that also build themselves (for running), so
//! that the analytic counts and the built network cannot disagree.
//!
//! Definitions (Liu et al., DARTS, ICLR 2019, `operations.py` of the authors' code): separable
//! conv = (ReLU, depthwise kxk stride s, pointwise 1x1, BN) twice, the second with stride 1;
//! dilated conv = ReLU, depthwise kxk dilation 2, pointwise, BN; `skip_connect` with stride 2 =
//! factorized reduce (ReLU, two 1x1 stride-2 convs to C/2, the second on the input shifted by
//! one pixel, concatenated, BN); avg pool 3x3 without counting padding; max pool 3x3; all BN
//! affine, no conv bias.
use super::genotype::DartsOp;
use crate::nn::layers::{relu, Bn, Conv, ConvSpec};
use crate::nn::Forward;
use tch::{nn, Tensor};

/// One layer of a sequential op.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LSpec {
    Relu,
    Conv(ConvSpec),
    Bn(i64),
    AvgPool {
        kernel: i64,
        stride: i64,
        padding: i64,
    },
    MaxPool {
        kernel: i64,
        stride: i64,
        padding: i64,
    },
}

impl LSpec {
    fn out_size(&self, h: i64) -> i64 {
        match *self {
            LSpec::Relu | LSpec::Bn(_) => h,
            LSpec::Conv(s) => s.out_size(h),
            LSpec::AvgPool {
                kernel,
                stride,
                padding,
            }
            | LSpec::MaxPool {
                kernel,
                stride,
                padding,
            } => (h + 2 * padding - kernel) / stride + 1,
        }
    }
}

/// An operation between two states of a cell (also stems, preprocessing and the aux head).
#[derive(Debug, Clone)]
pub(crate) enum OpSpec {
    Seq(Vec<LSpec>),
    Identity,
    FactorizedReduce { c_in: i64, c_out: i64 },
    Zero { stride: i64 },
}

impl OpSpec {
    pub fn relu_conv_bn(c_in: i64, c_out: i64, k: i64, stride: i64, pad: i64) -> OpSpec {
        OpSpec::Seq(vec![
            LSpec::Relu,
            LSpec::Conv(ConvSpec::plain(c_in, c_out, k, stride, pad)),
            LSpec::Bn(c_out),
        ])
    }

    fn depthwise(c: i64, k: i64, stride: i64, pad: i64, dil: i64) -> LSpec {
        LSpec::Conv(ConvSpec {
            c_in: c,
            c_out: c,
            kernel: k,
            stride,
            padding: pad,
            dilation: dil,
            groups: c,
            bias: false,
        })
    }

    fn sep_conv(c: i64, k: i64, stride: i64) -> OpSpec {
        let pad = k / 2;
        let pw = LSpec::Conv(ConvSpec::plain(c, c, 1, 1, 0));
        OpSpec::Seq(vec![
            LSpec::Relu,
            Self::depthwise(c, k, stride, pad, 1),
            pw,
            LSpec::Bn(c),
            LSpec::Relu,
            Self::depthwise(c, k, 1, pad, 1),
            pw,
            LSpec::Bn(c),
        ])
    }

    fn dil_conv(c: i64, k: i64, stride: i64) -> OpSpec {
        OpSpec::Seq(vec![
            LSpec::Relu,
            Self::depthwise(c, k, stride, k - 1, 2),
            LSpec::Conv(ConvSpec::plain(c, c, 1, 1, 0)),
            LSpec::Bn(c),
        ])
    }

    /// The op of a cell edge on `c` channels.
    pub fn for_op(op: DartsOp, c: i64, stride: i64) -> OpSpec {
        let pool = |max: bool| {
            let (kernel, padding) = (3, 1);
            OpSpec::Seq(vec![if max {
                LSpec::MaxPool {
                    kernel,
                    stride,
                    padding,
                }
            } else {
                LSpec::AvgPool {
                    kernel,
                    stride,
                    padding,
                }
            }])
        };
        match op {
            DartsOp::None => OpSpec::Zero { stride },
            DartsOp::MaxPool3x3 => pool(true),
            DartsOp::AvgPool3x3 => pool(false),
            DartsOp::SkipConnect if stride == 1 => OpSpec::Identity,
            DartsOp::SkipConnect => OpSpec::FactorizedReduce { c_in: c, c_out: c },
            DartsOp::SepConv3x3 => Self::sep_conv(c, 3, stride),
            DartsOp::SepConv5x5 => Self::sep_conv(c, 5, stride),
            DartsOp::SepConv7x7 => Self::sep_conv(c, 7, stride),
            DartsOp::DilConv3x3 => Self::dil_conv(c, 3, stride),
            DartsOp::DilConv5x5 => Self::dil_conv(c, 5, stride),
        }
    }

    pub fn params(&self) -> i64 {
        match self {
            OpSpec::Seq(ls) => ls
                .iter()
                .map(|l| match l {
                    LSpec::Conv(s) => s.params(),
                    LSpec::Bn(c) => Bn::params(*c, true),
                    _ => 0,
                })
                .sum(),
            OpSpec::Identity | OpSpec::Zero { .. } => 0,
            OpSpec::FactorizedReduce { c_in, c_out } => 2 * c_in * (c_out / 2) + 2 * c_out,
        }
    }

    /// `(multiply-adds, output side)` for one image of side `h`.
    pub fn cost(&self, h: i64) -> (i64, i64) {
        match self {
            OpSpec::Seq(ls) => {
                let (mut fl, mut s) = (0, h);
                for l in ls {
                    if let LSpec::Conv(c) = l {
                        fl += c.flops(s);
                    }
                    s = l.out_size(s);
                }
                (fl, s)
            }
            OpSpec::Identity => (0, h),
            OpSpec::Zero { stride } => (0, (h - 1) / stride + 1),
            OpSpec::FactorizedReduce { c_in, c_out } => {
                let a = ConvSpec::plain(*c_in, c_out / 2, 1, 2, 0);
                (a.flops(h) + a.flops(h - 1), a.out_size(h))
            }
        }
    }

    /// The element-wise operations the counter P-DARTS and PC-DARTS report with (`ptflops`)
    /// adds to the multiply-adds, for one image of side `h` with `c` input channels: one per
    /// ReLU output element, two per input element of an (affine) BN, one per pooling input
    /// element; identities and zeros count nothing.
    pub fn elementwise(&self, h: i64, c: i64) -> i64 {
        match self {
            OpSpec::Seq(ls) => {
                let (mut n, mut s, mut ch) = (0, h, c);
                for l in ls {
                    match *l {
                        LSpec::Relu | LSpec::AvgPool { .. } | LSpec::MaxPool { .. } => {
                            n += ch * s * s
                        }
                        LSpec::Bn(b) => n += 2 * b * s * s,
                        LSpec::Conv(spec) => ch = spec.c_out,
                    }
                    s = l.out_size(s);
                }
                n
            }
            OpSpec::Identity | OpSpec::Zero { .. } => 0,
            OpSpec::FactorizedReduce { c_in, c_out } => {
                let o = ConvSpec::plain(*c_in, c_out / 2, 1, 2, 0).out_size(h);
                c_in * h * h + 2 * c_out * o * o
            }
        }
    }

    pub fn build(&self, p: &nn::Path) -> Op {
        match self {
            OpSpec::Seq(ls) => Op::Seq(
                ls.iter()
                    .enumerate()
                    .map(|(k, l)| match *l {
                        LSpec::Relu => Layer::Relu,
                        LSpec::Conv(s) => Layer::Conv(Conv::new(&(p / "op" / k), s)),
                        LSpec::Bn(c) => Layer::Bn(Bn::new(&(p / "op" / k), c, true)),
                        LSpec::AvgPool {
                            kernel,
                            stride,
                            padding,
                        } => Layer::AvgPool {
                            kernel,
                            stride,
                            padding,
                        },
                        LSpec::MaxPool {
                            kernel,
                            stride,
                            padding,
                        } => Layer::MaxPool {
                            kernel,
                            stride,
                            padding,
                        },
                    })
                    .collect(),
            ),
            OpSpec::Identity => Op::Identity,
            OpSpec::Zero { stride } => Op::Zero { stride: *stride },
            OpSpec::FactorizedReduce { c_in, c_out } => {
                let s = ConvSpec::plain(*c_in, c_out / 2, 1, 2, 0);
                Op::FactorizedReduce {
                    conv_1: Conv::new(&(p / "conv_1"), s),
                    conv_2: Conv::new(&(p / "conv_2"), s),
                    bn: Bn::new(&(p / "bn"), *c_out, true),
                }
            }
        }
    }
}

pub(crate) enum Layer {
    Relu,
    Conv(Conv),
    Bn(Bn),
    AvgPool {
        kernel: i64,
        stride: i64,
        padding: i64,
    },
    MaxPool {
        kernel: i64,
        stride: i64,
        padding: i64,
    },
}

/// A built operation.
// Built once per network; boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Op {
    Seq(Vec<Layer>),
    Identity,
    FactorizedReduce { conv_1: Conv, conv_2: Conv, bn: Bn },
    Zero { stride: i64 },
}

impl Op {
    pub fn is_identity(&self) -> bool {
        matches!(self, Op::Identity)
    }

    pub fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        match self {
            Op::Seq(ls) => {
                let mut h = x.shallow_clone();
                for l in ls {
                    h = match l {
                        Layer::Relu => relu(&h, f),
                        Layer::Conv(c) => c.forward(&h, f),
                        Layer::Bn(b) => b.forward(&h, f),
                        Layer::AvgPool {
                            kernel,
                            stride,
                            padding,
                        } => h.avg_pool2d(
                            [*kernel, *kernel],
                            [*stride, *stride],
                            [*padding, *padding],
                            false,
                            false,
                            None,
                        ),
                        Layer::MaxPool {
                            kernel,
                            stride,
                            padding,
                        } => h.max_pool2d(
                            [*kernel, *kernel],
                            [*stride, *stride],
                            [*padding, *padding],
                            [1, 1],
                            false,
                        ),
                    };
                }
                h
            }
            Op::Identity => x.shallow_clone(),
            Op::Zero { stride } => {
                if *stride == 1 {
                    x * 0.0
                } else {
                    x.slice(2, 0, None, *stride).slice(3, 0, None, *stride) * 0.0
                }
            }
            Op::FactorizedReduce { conv_1, conv_2, bn } => {
                let r = relu(x, f);
                let a = conv_1.forward(&r, f);
                let shifted = r.slice(2, 1, None, 1).slice(3, 1, None, 1);
                let b = conv_2.forward(&shifted, f);
                bn.forward(&Tensor::cat(&[a, b], 1), f)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_op_costs() {
        // sep_conv_3x3, C=4, 8x8, stride 1: per half, depthwise 64*4*9 = 2304 and pointwise
        // 64*4*4 = 1024 mult-adds, 4*9 + 16 weights and 8 BN parameters.
        let s = OpSpec::for_op(DartsOp::SepConv3x3, 4, 1);
        assert_eq!(s.cost(8), (2 * (2304 + 1024), 8));
        assert_eq!(s.params(), 2 * (36 + 16 + 8));
        // Stride 2: the first depthwise runs on a 4x4 output: 16*4*9 = 576, pointwise 256.
        assert_eq!(
            OpSpec::for_op(DartsOp::SepConv3x3, 4, 2).cost(8),
            (576 + 256 + 3328 / 4, 4)
        );
        // dil_conv_5x5, stride 1, keeps the side (pad 4, dilation 2).
        assert_eq!(
            OpSpec::for_op(DartsOp::DilConv5x5, 4, 1).cost(8),
            (64 * 4 * 25 + 64 * 16, 8)
        );
        // Factorized reduce of 6 channels on 8x8: two 1x1 stride-2 convs 6 -> 3, 4x4 outputs.
        let fr = OpSpec::for_op(DartsOp::SkipConnect, 6, 2);
        assert_eq!(fr.cost(8), (2 * 16 * 3 * 6, 4));
        assert_eq!(fr.params(), 2 * 6 * 3 + 12);
        assert_eq!(OpSpec::for_op(DartsOp::MaxPool3x3, 4, 2).cost(8), (0, 4));
        assert_eq!(OpSpec::for_op(DartsOp::AvgPool3x3, 4, 1).params(), 0);
        assert_eq!(OpSpec::for_op(DartsOp::None, 4, 2).cost(7), (0, 4));
    }
}
