//! What networks of every space share: the interface every metric and the trainer use, the
//! sizing options, and the layers (each space's own network lives in its `space/` folder).
//!
//! A search space's architecture becomes a [`NetBuilder`]; `build` creates the parameters under a
//! `VarStore` path and returns a [`Net`]. One forward pass takes a [`Forward`] context that says
//! how to run (train or eval BN, BN removed, drop-path) and what to record on the way (ReLU
//! inputs, conv/linear outputs, BN batch variances, the last feature map, auxiliary logits):
//! the metrics read those instead of hooking modules as the PyTorch reference code does.

pub(crate) mod layers;
pub mod options;

pub use layers::ConvSpec;
pub use options::{DartsNetKind, NetOptions, OptionError};

use tch::{nn, Device, Tensor};

/// How to run one forward pass and what to record. `Default` is eval mode, nothing recorded.
#[derive(Default)]
pub struct Forward {
    /// BatchNorm uses batch statistics (and updates running ones) when true.
    pub train: bool,
    /// Skip every BatchNorm (synflow runs the network without BN).
    pub no_bn: bool,
    /// Execute every op even where the network was built pruned (NB201: `none` edges and ops
    /// that cannot reach the cell output), as eager PyTorch runs the benchmark's cell: NASWOT,
    /// Zen-NAS and linear regions read every *executed* ReLU and BN, so pruning would change
    /// their values; it changes nothing for a loss or its gradients.
    pub all_ops: bool,
    /// Also record (into `relu_inputs`) every cell node that feeds an edge, whatever the
    /// edge's op: TE-NAS counts linear regions on a DARTS-style supernet whose every edge runs
    /// a ReLU-conv op beside the chosen one (weighted 0), so each source node's ReLU pattern is
    /// part of the code. NB201 cells only.
    pub cell_node_relus: bool,
    /// DARTS drop-path probability (0 = off); used only when `train` is true.
    pub drop_path_prob: f64,
    /// When `Some`, drop-path takes its masks from here, front first (one `[batch, 1, 1, 1]`
    /// mask of 0/1 per dropped op output, in forward order) instead of drawing them: the
    /// trainer's step parity test replays the PyTorch reference's masks.
    pub drop_path_masks: Option<std::collections::VecDeque<Tensor>>,
    /// When `Some`, every ReLU pushes its input here, in execution order (NASWOT, linear regions).
    pub relu_inputs: Option<Vec<Tensor>>,
    /// When `Some`, every conv and linear layer pushes its output here (fisher).
    pub layer_outputs: Option<Vec<Tensor>>,
    /// When `Some`, every BatchNorm in train mode pushes its per-channel batch variance (Zen-NAS).
    pub bn_batch_vars: Option<Vec<Tensor>>,
    /// Set by the network: the feature map right before global pooling (Zen-NAS).
    pub features: Option<Tensor>,
    /// Set by networks with an auxiliary head, when `train` is true.
    pub aux_logits: Option<Tensor>,
}

impl Forward {
    pub fn train() -> Self {
        Forward {
            train: true,
            ..Default::default()
        }
    }
    pub fn eval() -> Self {
        Forward::default()
    }
}

/// A built network. Parameters live in the `VarStore` it was built under.
pub trait Net: Send {
    /// Logits `[batch, classes]`.
    fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor;
    /// The final classifier's weight `[classes, features]` (bias excluded), sharing storage.
    fn classifier_weight(&self) -> Tensor;
}

/// Everything that can be said about an architecture without building it, and how to build it.
pub trait NetBuilder: Send + Sync {
    /// The architecture in its space's textual form.
    fn arch(&self) -> String;
    /// Creates the parameters under `vs` and returns the network.
    fn build(&self, vs: &nn::Path) -> Box<dyn Net>;
    /// Parameter count in the space's published convention (NB201 counts every op, even those
    /// execution skips; DARTS excludes the auxiliary head).
    fn param_count(&self) -> i64;
    /// FLOPs for one image in the space's published convention (`SearchSpace::flops_convention`
    /// says which).
    fn flops(&self) -> i64;
    /// False when the cell has no parametric or pooling op at all (NB201: every edge `none` or
    /// `skip_connect`): such networks cannot learn features and the paper's metric skips them.
    fn has_learnable_ops(&self) -> bool;
    /// Number of classes of the classifier.
    fn num_classes(&self) -> i64;
    /// Input `(channels, height, width)`.
    fn input_shape(&self) -> (i64, i64, i64);
    /// Parameters and multiply-adds per part of the network (stem, each cell or block, head),
    /// in execution order; the parts sum to `param_count` and `flops`.
    fn breakdown(&self) -> Vec<CostPart> {
        Vec::new()
    }
    /// The PyTorch benchmark reference's name for one of this network's variable paths
    /// (bench/README.md, "The exchange format"); `None` where the space has no reference.
    fn exchange_name(&self, _path: &str) -> Option<String> {
        None
    }
    /// TE-NAS's thin network for counting linear regions: the candidate's cell at one channel,
    /// without a stem, fed one-channel 3x3 inputs (`input_shape` says which); `None` where the
    /// space has no such form.
    fn tenas_thin(&self) -> Option<Box<dyn NetBuilder>> {
        None
    }
}

/// The cost of one part of a network, for `inspect`'s breakdown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CostPart {
    /// `stem`, `cell3`, `reduction1`, `head`, `aux_head`, ...
    pub name: String,
    /// Feature-map side at the part's output.
    pub size: i64,
    pub channels: i64,
    pub params: i64,
    pub flops: i64,
}

/// Convolutions with this few output channels stay NCHW.
const CHANNELS_LAST_MIN_OUT: i64 = 8;

/// libtorch 2.11's oneDNN corrupts the heap in a channels-last convolution backward pass of a
/// DARTS ImageNet network of width 8 or less (its stem has width/2 = 4 output channels):
/// `free(): invalid next size`, then an abort, in the angle_loss training. Measured on the
/// development CPU (runner/tests/imagenet_path.rs at `channels: 4` and 8 aborted; 16 ran, and
/// so did every single-layer shape tried alone). NCHW runs them correctly, so networks with a
/// convolution narrower than [`CHANNELS_LAST_MIN_OUT`] stay NCHW.
fn channels_last_is_safe(vs: &nn::VarStore) -> bool {
    vs.variables()
        .values()
        .all(|t| t.dim() != 4 || t.size()[0] >= CHANNELS_LAST_MIN_OUT)
}

/// Stores every 4-D parameter (conv weights) channels-last when the network runs on the CPU.
/// A channels-last weight makes libtorch's oneDNN convolutions run in NHWC and hand NHWC to
/// the BN, ReLU and pooling after them, instead of reordering at every call. Measured on the
/// development CPU for the training step of an NB201 network with 1x1 convs and pooling (the
/// angle_loss step): 2.1x faster, in PyTorch alone as in the runner; an all-3x3 network's
/// training step changed little (BENCHMARKS.md, section 3).
/// Values differ from an NCHW run only by float rounding. Call before creating an optimiser.
pub fn use_channels_last(vs: &nn::VarStore, device: Device) {
    if device != Device::Cpu || !channels_last_is_safe(vs) {
        return;
    }
    tch::no_grad(|| {
        for (_, mut t) in vs.variables() {
            if t.dim() == 4 {
                let nhwc = t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
                t.set_data(&nhwc);
            }
        }
    });
}
