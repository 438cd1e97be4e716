//! The few layers the space networks are made of, each honouring [`Forward`]: ReLUs record their
//! inputs, conv and linear layers their outputs, BatchNorm its batch variance, and `no_bn` skips
//! BatchNorm entirely. Parameter names follow PyTorch (`weight`, `bias`, `running_mean`, ...).
use super::Forward;
use tch::{nn, Tensor};

/// ReLU that records its input when asked.
pub(crate) fn relu(x: &Tensor, f: &mut Forward) -> Tensor {
    if let Some(v) = f.relu_inputs.as_mut() {
        v.push(x.shallow_clone());
    }
    x.relu()
}

/// Records a conv/linear output when asked, and passes it on.
fn record_output(y: Tensor, f: &mut Forward) -> Tensor {
    if let Some(v) = f.layer_outputs.as_mut() {
        v.push(y.shallow_clone());
    }
    y
}

/// Static shape of a 2-D convolution, enough to count parameters and multiply-adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    pub c_in: i64,
    pub c_out: i64,
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
    pub dilation: i64,
    pub groups: i64,
    pub bias: bool,
}

impl ConvSpec {
    /// A bias-free convolution with `groups = 1`, dilation 1.
    pub fn plain(c_in: i64, c_out: i64, kernel: i64, stride: i64, padding: i64) -> ConvSpec {
        ConvSpec {
            c_in,
            c_out,
            kernel,
            stride,
            padding,
            dilation: 1,
            groups: 1,
            bias: false,
        }
    }

    pub fn params(&self) -> i64 {
        self.c_out * (self.c_in / self.groups) * self.kernel * self.kernel
            + if self.bias { self.c_out } else { 0 }
    }

    /// Output side for an input side `h`.
    pub fn out_size(&self, h: i64) -> i64 {
        (h + 2 * self.padding - self.dilation * (self.kernel - 1) - 1) / self.stride + 1
    }

    /// Multiply-adds for one image of side `h` (bias adds included when there is a bias).
    pub fn flops(&self, h: i64) -> i64 {
        let o = self.out_size(h);
        let per_out =
            (self.c_in / self.groups) * self.kernel * self.kernel + if self.bias { 1 } else { 0 };
        o * o * self.c_out * per_out
    }
}

/// A 2-D convolution.
#[derive(Debug)]
pub(crate) struct Conv {
    pub spec: ConvSpec,
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Conv {
    pub fn new(p: &nn::Path, spec: ConvSpec) -> Conv {
        let cfg = nn::ConvConfig {
            stride: spec.stride,
            padding: spec.padding,
            dilation: spec.dilation,
            groups: spec.groups,
            bias: spec.bias,
            ..Default::default()
        };
        let c = nn::conv2d(p, spec.c_in, spec.c_out, spec.kernel, cfg);
        Conv {
            spec,
            weight: c.ws,
            bias: c.bs,
        }
    }

    pub fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        let s = &self.spec;
        let y = x.conv2d(
            &self.weight,
            self.bias.as_ref(),
            [s.stride, s.stride],
            [s.padding, s.padding],
            [s.dilation, s.dilation],
            s.groups,
        );
        record_output(y, f)
    }
}

/// BatchNorm over channels. Weight starts at 1 and bias at 0, as in PyTorch.
#[derive(Debug)]
pub(crate) struct Bn {
    bn: nn::BatchNorm,
}

impl Bn {
    pub fn new(p: &nn::Path, c: i64, affine: bool) -> Bn {
        let cfg = nn::BatchNormConfig {
            affine,
            ws_init: nn::Init::Const(1.0),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        Bn {
            bn: nn::batch_norm2d(p, c, cfg),
        }
    }

    /// Parameters of an affine BN over `c` channels (running statistics are buffers).
    pub fn params(c: i64, affine: bool) -> i64 {
        if affine {
            2 * c
        } else {
            0
        }
    }

    pub fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        if f.no_bn {
            return x.shallow_clone();
        }
        if f.train {
            if let Some(v) = f.bn_batch_vars.as_mut() {
                // Unbiased, as the running variance that a momentum-1 BN would hold.
                v.push(x.detach().var_dim([0i64, 2, 3].as_slice(), true, false));
            }
        }
        use tch::nn::ModuleT;
        self.bn.forward_t(x, f.train)
    }
}

/// A fully connected layer with a bias.
#[derive(Debug)]
pub(crate) struct Linear {
    pub weight: Tensor,
    bias: Tensor,
}

impl Linear {
    pub fn new(p: &nn::Path, c_in: i64, c_out: i64) -> Linear {
        let l = nn::linear(p, c_in, c_out, Default::default());
        let bias =
            l.bs.unwrap_or_else(|| Tensor::zeros([c_out], (tch::Kind::Float, p.device())));
        Linear { weight: l.ws, bias }
    }

    pub fn params(c_in: i64, c_out: i64) -> i64 {
        c_in * c_out + c_out
    }

    /// Multiply-adds plus bias adds for one sample.
    pub fn flops(c_in: i64, c_out: i64) -> i64 {
        c_in * c_out + c_out
    }

    pub fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        record_output(x.linear(&self.weight, Some(&self.bias)), f)
    }
}

/// ReLU, conv, BN: the NB201 and DARTS building block.
#[derive(Debug)]
pub(crate) struct ReluConvBn {
    pub conv: Conv,
    bn: Bn,
}

impl ReluConvBn {
    pub fn new(p: &nn::Path, spec: ConvSpec, affine: bool) -> ReluConvBn {
        ReluConvBn {
            conv: Conv::new(&(p / "op" / 1), spec),
            bn: Bn::new(&(p / "op" / 2), spec.c_out, affine),
        }
    }

    pub fn params(spec: &ConvSpec, affine: bool) -> i64 {
        spec.params() + Bn::params(spec.c_out, affine)
    }

    /// Runs on an input whose ReLU the caller already computed (`relu_x`), so that several ops
    /// reading the same node share one ReLU; the input is still recorded once per op.
    pub fn forward_relued(&self, x: &Tensor, relu_x: &Tensor, f: &mut Forward) -> Tensor {
        if let Some(v) = f.relu_inputs.as_mut() {
            v.push(x.shallow_clone());
        }
        let y = self.conv.forward(relu_x, f);
        self.bn.forward(&y, f)
    }

    pub fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        let r = relu(x, f);
        let y = self.conv.forward(&r, f);
        self.bn.forward(&y, f)
    }
}
