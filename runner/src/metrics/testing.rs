//! Small hand-made networks implementing `NetBuilder`/`Net`, for the metrics' tests and the
//! `score` command's `toy` space: a two-layer linear net (synflow by hand), a net whose only
//! ReLU sees the input itself (known activation patterns), and a tiny conv net with BatchNorm
//! that honours every `Forward` field (or, as `skip`, has no learnable cell op).
use tch::{nn, nn::Module, nn::ModuleT, Tensor};

use crate::nn::{Forward, Net, NetBuilder};

fn relu_recorded(x: &Tensor, f: &mut Forward) -> Tensor {
    if let Some(v) = f.relu_inputs.as_mut() {
        v.push(x.shallow_clone());
    }
    x.relu()
}

fn layer_recorded(y: Tensor, f: &mut Forward) -> Tensor {
    if let Some(v) = f.layer_outputs.as_mut() {
        v.push(y.shallow_clone());
    }
    y
}

/// Flatten, `fc1` (d -> hidden), optional ReLU, `fc2` (hidden -> classes).
#[derive(Debug, Clone)]
pub struct LinearNetBuilder {
    pub input: (i64, i64, i64),
    pub hidden: i64,
    pub classes: i64,
    pub bias: bool,
    pub relu: bool,
}

struct LinearNet {
    fc1: nn::Linear,
    fc2: nn::Linear,
    relu: bool,
}

impl Net for LinearNet {
    fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        let h = layer_recorded(self.fc1.forward(&x.flatten(1, -1)), f);
        let h = if self.relu { relu_recorded(&h, f) } else { h };
        layer_recorded(self.fc2.forward(&h), f)
    }
    fn classifier_weight(&self) -> Tensor {
        self.fc2.ws.shallow_clone()
    }
}

impl LinearNetBuilder {
    fn d(&self) -> i64 {
        self.input.0 * self.input.1 * self.input.2
    }
}

impl NetBuilder for LinearNetBuilder {
    fn arch(&self) -> String {
        format!("linear:{}", self.hidden)
    }
    fn build(&self, vs: &nn::Path) -> Box<dyn Net> {
        let cfg = nn::LinearConfig {
            bias: self.bias,
            ..Default::default()
        };
        Box::new(LinearNet {
            fc1: nn::linear(vs / "fc1", self.d(), self.hidden, cfg),
            fc2: nn::linear(vs / "fc2", self.hidden, self.classes, cfg),
            relu: self.relu,
        })
    }
    fn param_count(&self) -> i64 {
        let b = self.bias as i64;
        self.d() * self.hidden + b * self.hidden + self.hidden * self.classes + b * self.classes
    }
    fn flops(&self) -> i64 {
        self.param_count()
    }
    fn has_learnable_ops(&self) -> bool {
        true
    }
    fn num_classes(&self) -> i64 {
        self.classes
    }
    fn input_shape(&self) -> (i64, i64, i64) {
        self.input
    }
}

/// The input itself goes through one recorded ReLU, then a linear classifier: the ReLU codes
/// are the signs of the input pixels.
#[derive(Debug, Clone)]
pub struct ReluProbeBuilder {
    pub input: (i64, i64, i64),
    pub classes: i64,
}

struct ReluProbe {
    fc: nn::Linear,
}

impl Net for ReluProbe {
    fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        let h = relu_recorded(&x.flatten(1, -1), f);
        layer_recorded(self.fc.forward(&h), f)
    }
    fn classifier_weight(&self) -> Tensor {
        self.fc.ws.shallow_clone()
    }
}

impl NetBuilder for ReluProbeBuilder {
    fn arch(&self) -> String {
        "relu_probe".into()
    }
    fn build(&self, vs: &nn::Path) -> Box<dyn Net> {
        let d = self.input.0 * self.input.1 * self.input.2;
        Box::new(ReluProbe {
            fc: nn::linear(vs / "fc", d, self.classes, Default::default()),
        })
    }
    fn param_count(&self) -> i64 {
        let d = self.input.0 * self.input.1 * self.input.2;
        d * self.classes + self.classes
    }
    fn flops(&self) -> i64 {
        self.param_count()
    }
    fn has_learnable_ops(&self) -> bool {
        true
    }
    fn num_classes(&self) -> i64 {
        self.classes
    }
    fn input_shape(&self) -> (i64, i64, i64) {
        self.input
    }
}

/// Stem conv3x3 (no bias) + BN + ReLU, then a "cell" conv3x3 + BN + ReLU (or, with
/// `cell: false`, an identity cell like NB201's all-skip cells), global average pool, linear.
#[derive(Debug, Clone)]
pub struct TinyConvBuilder {
    pub input: (i64, i64, i64),
    pub channels: i64,
    pub classes: i64,
    pub cell: bool,
}

struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBn {
    fn new(vs: &nn::Path, cin: i64, cout: i64) -> Self {
        let cfg = nn::ConvConfig {
            padding: 1,
            bias: false,
            ..Default::default()
        };
        ConvBn {
            conv: nn::conv2d(vs / "conv", cin, cout, 3, cfg),
            bn: nn::batch_norm2d(vs / "bn", cout, Default::default()),
        }
    }
    fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        let y = layer_recorded(self.conv.forward(x), f);
        let y = if f.no_bn {
            y
        } else {
            if f.train {
                if let Some(v) = f.bn_batch_vars.as_mut() {
                    v.push(y.var_dim([0i64, 2, 3].as_slice(), false, false).detach());
                }
            }
            self.bn.forward_t(&y, f.train)
        };
        relu_recorded(&y, f)
    }
}

struct TinyConv {
    stem: ConvBn,
    cell: Option<ConvBn>,
    fc: nn::Linear,
}

impl Net for TinyConv {
    fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        let h = self.stem.forward(x, f);
        let h = match &self.cell {
            Some(c) => c.forward(&h, f),
            None => h,
        };
        f.features = Some(h.shallow_clone());
        let pooled = h.mean_dim([2i64, 3].as_slice(), false, h.kind());
        layer_recorded(self.fc.forward(&pooled), f)
    }
    fn classifier_weight(&self) -> Tensor {
        self.fc.ws.shallow_clone()
    }
}

impl NetBuilder for TinyConvBuilder {
    fn arch(&self) -> String {
        format!(
            "{}:{}",
            if self.cell { "conv" } else { "skip" },
            self.channels
        )
    }
    fn build(&self, vs: &nn::Path) -> Box<dyn Net> {
        let c = self.channels;
        Box::new(TinyConv {
            stem: ConvBn::new(&(vs / "stem"), self.input.0, c),
            cell: self.cell.then(|| ConvBn::new(&(vs / "cell"), c, c)),
            fc: nn::linear(vs / "fc", c, self.classes, Default::default()),
        })
    }
    fn param_count(&self) -> i64 {
        let c = self.channels;
        let stem = 9 * self.input.0 * c + 2 * c;
        let cell = if self.cell { 9 * c * c + 2 * c } else { 0 };
        stem + cell + c * self.classes + self.classes
    }
    fn flops(&self) -> i64 {
        let (cin, h, w) = self.input;
        let c = self.channels;
        let cell = if self.cell { 9 * c * c * h * w } else { 0 };
        9 * cin * c * h * w + cell + c * self.classes + self.classes
    }
    fn has_learnable_ops(&self) -> bool {
        self.cell
    }
    fn num_classes(&self) -> i64 {
        self.classes
    }
    fn input_shape(&self) -> (i64, i64, i64) {
        self.input
    }
}

/// The `toy` space of the `score` command: `conv:C`, `skip:C` (tiny conv nets, C channels) and
/// `linear:H` (two-layer ReLU net, H hidden units), all on 3x32x32 inputs with 10 classes.
pub fn toy_builder(arch: &str) -> Result<Box<dyn NetBuilder>, String> {
    let (kind, width) = arch
        .split_once(':')
        .ok_or_else(|| format!("toy arch '{arch}': expected conv:C, skip:C or linear:H"))?;
    let width: i64 = width
        .parse()
        .ok()
        .filter(|w| (1..=256).contains(w))
        .ok_or_else(|| format!("toy arch '{arch}': width must be an integer in 1..=256"))?;
    let input = (3, 32, 32);
    match kind {
        "conv" | "skip" => Ok(Box::new(TinyConvBuilder {
            input,
            channels: width,
            classes: 10,
            cell: kind == "conv",
        })),
        "linear" => Ok(Box::new(LinearNetBuilder {
            input,
            hidden: width,
            classes: 10,
            bias: true,
            relu: true,
        })),
        other => Err(format!(
            "toy arch '{arch}': unknown kind '{other}' (conv, skip, linear)"
        )),
    }
}
