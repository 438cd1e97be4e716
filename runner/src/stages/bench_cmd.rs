//! `nas-runner train-bench` and `decode-bench`: the runner's side of `bench/run.sh`, printing the
//! same JSON lines as `bench/reference/train_speed.py` and `decode_speed.py`.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

use nas_api::contract::Outcome;
use serde::Serialize;
use tch::{nn::VarStore, Device, Kind, Tensor};
use thiserror::Error;

use crate::data::image::{decode_jpeg, is_jpeg_name};
use crate::data::{tarball, DataError};
use crate::nn::NetBuilder;
use crate::nn::NetOptions;
use crate::space;
use crate::train::optim::Sgd;
use crate::train::recipe::{Preset, Recipe};
use crate::train::trainer::{self, StepHyper};

/// Arguments of `train-bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainBenchArgs {
    /// Comma-separated nets: `nb201:ARCH` or `darts_v2` (DARTS_V2, CIFAR network, C=36,
    /// 20 cells, auxiliary head).
    #[arg(long)]
    pub nets: String,
    /// Images per step.
    #[arg(long, default_value_t = 96)]
    pub batch: i64,
    /// Timed steps per net.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps before the timed ones.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// `cpu`, `cuda`, `cuda:N` or `auto`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// libtorch intra-op threads (default: libtorch's, i.e. OMP_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<i32>,
}

/// Arguments of `decode-bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct DecodeBenchArgs {
    /// A tar or tar.gz of `<class>/<image>.jpg` members (CIFAR-10's `test.tar.gz`).
    #[arg(long)]
    pub tar: PathBuf,
    /// Comma-separated output sides.
    #[arg(long, default_value = "32,64")]
    pub size: String,
    /// Decode only the first N images (class, then name order); 0 = all.
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Timed passes per size; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
}

/// Why a benchmark stopped.
#[derive(Debug, Error)]
pub enum BenchError {
    /// Bad flag, unknown net or architecture, unreadable input: exit code 2.
    #[error("{0}")]
    Usage(String),
    /// The benchmark itself failed (a corrupt image, a libtorch error): exit code 1.
    #[error("{0}")]
    Failed(String),
}

impl BenchError {
    pub fn outcome(&self) -> Outcome {
        match self {
            BenchError::Usage(_) => Outcome::InvalidConfig,
            BenchError::Failed(_) => Outcome::Failed,
        }
    }
}

fn usage(flag: &str, message: impl std::fmt::Display) -> BenchError {
    BenchError::Usage(format!("--{flag}: {message}"))
}

#[derive(Serialize)]
struct TrainLine<'a> {
    net: &'a str,
    params: i64,
    batch: i64,
    steps: usize,
    seconds: f64,
    images_per_s: f64,
}

#[derive(Serialize)]
struct DecodeLine {
    size: u32,
    images: usize,
    seconds: f64,
    images_per_s: f64,
    read_seconds: f64,
    repeats: usize,
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

/// The builder of one `--nets` entry and whether it is DARTS (auxiliary loss and drop-path).
fn net_builder(name: &str) -> Result<(Box<dyn NetBuilder>, bool), BenchError> {
    let bad = |e: space::SpaceError| usage("nets", format!("`{name}`: {e}"));
    if name.eq_ignore_ascii_case("darts_v2") {
        // The `darts-cifar` recipe's evaluation network.
        let opts = NetOptions {
            width: Some(36),
            cells: Some(20),
            auxiliary: true,
            ..NetOptions::default()
        };
        return Ok((
            space::builder("darts", "DARTS_V2", &opts).map_err(bad)?,
            true,
        ));
    }
    match name.strip_prefix("nb201:") {
        Some(arch) => Ok((
            space::builder("nb201", arch, &NetOptions::default()).map_err(bad)?,
            false,
        )),
        None => Err(usage(
            "nets",
            format!("unknown net `{name}`: expected nb201:ARCH or darts_v2"),
        )),
    }
}

/// Runs `train-bench`: one JSON line per net on standard output.
pub fn train_bench(a: &TrainBenchArgs) -> Result<(), BenchError> {
    if a.batch < 1 {
        return Err(usage(
            "batch",
            format!("must be at least 1, got {}", a.batch),
        ));
    }
    if a.steps < 1 {
        return Err(usage("steps", "must be at least 1, got 0"));
    }
    let names: Vec<&str> = a.nets.split(',').filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Err(usage("nets", "no net given"));
    }
    // Every name is checked before any net runs.
    let builders = names
        .iter()
        .map(|n| net_builder(n))
        .collect::<Result<Vec<_>, _>>()?;
    let device = crate::device::parse_device(&a.device).map_err(|e| usage("device", e))?;
    if device.is_cuda() && !tch::Cuda::is_available() {
        return Err(usage(
            "device",
            format!("{}: CUDA is not available to this build", a.device),
        ));
    }
    if let Some(t) = a.threads {
        if t < 1 {
            return Err(usage("threads", format!("must be at least 1, got {t}")));
        }
        tch::set_num_threads(t);
    }
    tch::manual_seed(0);
    for (name, (builder, darts)) in names.iter().zip(builders) {
        let seconds = catch_unwind(AssertUnwindSafe(|| {
            time_training(builder.as_ref(), darts, a, device)
        }))
        .map_err(|p| {
            BenchError::Failed(format!("{name}: {}", crate::panics::panic_message(&*p)))
        })?;
        let line = TrainLine {
            net: name,
            params: builder.param_count(),
            batch: a.batch,
            steps: a.steps,
            seconds: round(seconds, 4),
            images_per_s: round((a.batch as f64) * (a.steps as f64) / seconds, 2),
        };
        println!("{}", serde_json::to_string(&line).expect("plain struct"));
    }
    Ok(())
}

/// Seconds of `a.steps` training steps after `a.warmup` untimed ones.
fn time_training(builder: &dyn NetBuilder, darts: bool, a: &TrainBenchArgs, device: Device) -> f64 {
    let vs = VarStore::new(device);
    let net = builder.build(&vs.root());
    crate::nn::use_channels_last(&vs, device);
    // The `darts-cifar` recipe's optimiser, drop-path, auxiliary weight and clipping.
    let r = Recipe::preset(Preset::DartsCifar);
    let mut opt = Sgd::new(&vs, r.momentum, r.nesterov, r.weight_decay);
    let (c, h, w) = builder.input_shape();
    let x = Tensor::randn([a.batch, c, h, w], (Kind::Float, device));
    let y = Tensor::randint(builder.num_classes(), [a.batch], (Kind::Int64, device));
    let hyper = StepHyper {
        lr: r.lr,
        drop_path: if darts { r.drop_path } else { 0.0 },
        autocast: false,
    };
    let mut step = || {
        trainer::step(net.as_ref(), &mut opt, &x, &y, &r, &hyper);
    };
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for _ in 0..a.warmup {
        step();
    }
    sync();
    let t0 = Instant::now();
    for _ in 0..a.steps {
        step();
    }
    sync();
    t0.elapsed().as_secs_f64()
}

/// Runs `decode-bench`: one JSON line per size on standard output.
///
/// Each image goes through `stage-data`'s own path: jpeg-decoder to RGB, then
/// `resize_short_side(size)` (fast_image_resize, bilinear) and `center_crop(size)`. For square
/// images such as CIFAR's that is a plain `size x size` bilinear resize, skipped when the image
/// already has that size, as the Pillow baseline does.
pub fn decode_bench(a: &DecodeBenchArgs) -> Result<(), BenchError> {
    let sizes = a
        .size
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| match s.trim().parse::<u32>() {
            Ok(v) if v >= 1 => Ok(v),
            _ => Err(usage("size", format!("`{s}` is not a positive integer"))),
        })
        .collect::<Result<Vec<u32>, _>>()?;
    if sizes.is_empty() {
        return Err(usage("size", "no size given"));
    }
    if a.repeats < 1 {
        return Err(usage("repeats", "must be at least 1, got 0"));
    }
    let shown = a.tar.display().to_string();
    let t0 = Instant::now();
    let mut blobs = read_members(a)?;
    let read_seconds = t0.elapsed().as_secs_f64();
    if blobs.is_empty() {
        return Err(usage(
            "tar",
            format!("{shown}: no <class>/<image>.jpg members found"),
        ));
    }
    if a.limit > 0 {
        blobs.truncate(a.limit);
    }
    for size in sizes {
        let mut times = Vec::with_capacity(a.repeats);
        for _ in 0..a.repeats {
            let t0 = Instant::now();
            for (key, bytes) in &blobs {
                let image = decode_jpeg(bytes, 3, key)
                    .and_then(|im| im.resize_short_side(size))
                    .map(|im| im.center_crop(size))
                    .map_err(|e| BenchError::Failed(format!("{shown}: {e}")))?;
                std::hint::black_box(image);
            }
            times.push(t0.elapsed().as_secs_f64());
        }
        let seconds = median(&mut times);
        let line = DecodeLine {
            size,
            images: blobs.len(),
            seconds: round(seconds, 4),
            images_per_s: round(blobs.len() as f64 / seconds, 1),
            read_seconds: round(read_seconds, 4),
            repeats: a.repeats,
        };
        println!("{}", serde_json::to_string(&line).expect("plain struct"));
    }
    Ok(())
}

/// The `<class>/<image>.jpg` members of the tar, in memory, sorted by class then name (as
/// `cifar.read_members` orders them).
fn read_members(a: &DecodeBenchArgs) -> Result<Vec<(String, Vec<u8>)>, BenchError> {
    let want = |p: &str| p.split('/').count() == 2 && is_jpeg_name(p);
    let mut blobs = Vec::new();
    tarball::for_each_entry(&a.tar, &want, &mut |e| {
        if let Some(data) = e.data {
            blobs.push((e.path.to_string(), data));
        }
        Ok(())
    })
    .map_err(|e| match e {
        DataError::Io { .. } => BenchError::Failed(format!("--tar: {e}")),
        other => usage("tar", other),
    })?;
    blobs.sort_by(|x, y| x.0.cmp(&y.0));
    Ok(blobs)
}

/// Median as Python's `statistics.median` (mean of the middle two for an even count); the
/// store benchmark uses it too.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
