//! TE-NAS's linear-region count on its thin NB201 network: the thin network's shape, the crops,
//! and a count derived independently of the network.
use std::collections::HashMap;

use nas_runner::metrics::{self, linear_regions, MetricBatch, MetricContext};
use nas_runner::nn::NetOptions;
use nas_runner::nn::{Forward, NetBuilder};
use nas_runner::space::nb201::Nb201Arch;
use nas_runner::space::nb201::Nb201Builder;
use tch::{nn::VarStore, Device, Kind, Tensor};

const ALL_CONV: &str =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";
const ALL_NONE: &str = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";

fn nb201(arch: &str) -> Nb201Builder {
    let a: Nb201Arch = arch.parse().expect("arch");
    Nb201Builder::new(
        a,
        &NetOptions {
            classes: 10,
            ..NetOptions::default()
        },
    )
    .expect("builder")
}

fn ctx(seed: u64, crops: usize, batches: f64) -> MetricContext {
    let mut c = MetricContext::new(seed, Device::Cpu);
    c.batch_size = Some(crops);
    c.options.insert("batches".into(), batches);
    c
}

#[test]
fn the_thin_network_is_one_cell_at_one_channel_without_a_stem() {
    let _turn = nas_runner::testkit::rng_lock();
    let thin = nb201(ALL_CONV).tenas_thin().expect("NB201 has a thin form");
    assert_eq!(thin.input_shape(), (1, 3, 3));
    // Six ReLU-conv3x3-BN edges at one channel (9 + 2 each), the head's BN (2) and a 1 -> 10
    // classifier (10 + 10).
    assert_eq!(thin.param_count(), 6 * 11 + 2 + 20);
    let vs = VarStore::new(Device::Cpu);
    let net = thin.build(&vs.root());
    assert!(vs.variables().keys().all(|k| !k.starts_with("stem")));
    let x = Tensor::randn([5, 1, 3, 3], (Kind::Float, Device::Cpu));
    let mut f = Forward {
        train: true,
        all_ops: true,
        cell_node_relus: true,
        relu_inputs: Some(Vec::new()),
        ..Default::default()
    };
    assert_eq!(net.forward(&x, &mut f).size(), [5, 10]);
    // The cell input and nodes 1 and 2, six conv edges' ReLUs, the head's ReLU.
    assert_eq!(f.relu_inputs.map(|v| v.len()), Some(3 + 6 + 1));
}

#[test]
fn crops_take_the_drawn_channel_rows_and_columns() {
    let _turn = nas_runner::testkit::rng_lock();
    let images = Tensor::arange(2 * 2 * 4 * 4, (Kind::Float, Device::Cpu)).view([2, 2, 4, 4]);
    let crops = linear_regions::crops_at(&images, &[1, 0, 1, 0, 1, 0]);
    assert_eq!(crops.size(), [2, 1, 3, 3]);
    // Image 0, channel 1 starts at 16: rows 0..3, columns 1..4.
    let first: Vec<f32> = Vec::try_from(crops.get(0).flatten(0, -1)).unwrap();
    assert_eq!(first, [17., 18., 19., 21., 22., 23., 25., 26., 27.]);
    // Image 1 starts at 32, channel 0: rows 1..4, columns 0..3.
    let second: Vec<f32> = Vec::try_from(crops.get(1).flatten(0, -1)).unwrap();
    assert_eq!(second, [36., 37., 38., 40., 41., 42., 44., 45., 46.]);
    // Drawn crops stay inside the image and are reproducible from the seed.
    let big = Tensor::randn([50, 3, 8, 8], (Kind::Float, Device::Cpu));
    let a = linear_regions::crops_of(&big, 50, 7);
    assert_eq!(a.size(), [50, 1, 3, 3]);
    assert!(a.equal(&linear_regions::crops_of(&big, 50, 7)));
    assert!(!a.equal(&linear_regions::crops_of(&big, 50, 8)));
}

/// Distinct rows of `codes` counted as TE-NAS does: sum over rows of 1 / multiplicity.
fn distinct_patterns(codes: &[Vec<bool>]) -> f64 {
    let mut count: HashMap<&Vec<bool>, usize> = HashMap::new();
    for c in codes {
        *count.entry(c).or_default() += 1;
    }
    codes.iter().map(|c| 1.0 / count[c] as f64).sum()
}

#[test]
fn an_all_none_cell_counts_the_sign_patterns_of_the_crops_themselves() {
    let _turn = nas_runner::testkit::rng_lock();
    // Nodes 1-3 are zero, so the head's ReLU input is zero too: the only varying part of each
    // code is the cell input's ReLU pattern, which TE-NAS's supernet records on every edge.
    // Counting the crops' own signs gives the value without the network.
    let n = 300;
    let batch = MetricBatch::random(n as i64, (3, 8, 8), 10, 3, Device::Cpu);
    let spec = metrics::lookup("linear_regions").unwrap();
    let c = ctx(11, n, 3.0);
    let got = metrics::compute(spec, &nb201(ALL_NONE), &batch, &c)
        .unwrap()
        .as_scalar()
        .unwrap();
    let crops = linear_regions::crops_of(&batch.images, n, 11).view([n as i64, 9]);
    let signs: Vec<f32> = Vec::try_from(crops.gt(0.0).to_kind(Kind::Float).flatten(0, -1)).unwrap();
    let codes: Vec<Vec<bool>> = signs
        .chunks(9)
        .map(|r| r.iter().map(|&v| v > 0.0).collect())
        .collect();
    let expected = distinct_patterns(&codes);
    assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    // Without the cell nodes the code would be constant: one region.
    assert!(expected > 100.0, "{expected}");
}

#[test]
fn the_count_is_reproducible_and_bounded_by_the_crops() {
    let _turn = nas_runner::testkit::rng_lock();
    let n = 120;
    let batch = MetricBatch::random(n as i64, (3, 8, 8), 10, 5, Device::Cpu);
    let spec = metrics::lookup("linear_regions").unwrap();
    let value = |seed| {
        metrics::compute(spec, &nb201(ALL_CONV), &batch, &ctx(seed, n, 3.0))
            .unwrap()
            .as_scalar()
            .unwrap()
    };
    let v = value(2);
    assert_eq!(v.to_bits(), value(2).to_bits());
    assert!(v >= 1.0 && v <= n as f64, "{v}");
    let err = metrics::compute(spec, &nb201(ALL_CONV), &batch, &ctx(2, 4, 5.0)).unwrap_err();
    assert!(err.to_string().contains("batches"), "{err}");
}
