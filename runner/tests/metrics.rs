//! Metrics on tiny hand-made networks: values derived by hand, invariances, determinism.
use nas_runner::metrics::angle_loss::{self, cosine, Protocol, DEGENERATE};
use nas_runner::metrics::testing::{LinearNetBuilder, ReluProbeBuilder, TinyConvBuilder};
use nas_runner::metrics::{
    self, fisher, jacob_cov, linear_regions, naswot, ntk_cond, synflow, zen, MetricBatch,
    MetricContext, MetricValue,
};
use nas_runner::nn::NetBuilder;
use nas_runner::nn::NetOptions;
use nas_runner::space::nb201::Nb201Arch;
use nas_runner::space::nb201::Nb201Builder;
use tch::{nn::VarStore, no_grad, Device, Kind, Tensor};

fn ctx(seed: u64, batch: usize) -> MetricContext {
    let mut c = MetricContext::new(seed, Device::Cpu);
    c.batch_size = Some(batch);
    c
}

fn tiny(cell: bool) -> TinyConvBuilder {
    TinyConvBuilder {
        input: (3, 8, 8),
        channels: 4,
        classes: 10,
        cell,
    }
}

fn number(v: MetricValue) -> f64 {
    v.as_scalar().expect("a number")
}

fn set(vs: &VarStore, name: &str, values: &[f64], shape: &[i64]) {
    let vars = vs.variables();
    no_grad(|| {
        let mut t = vars[name].shallow_clone();
        t.copy_(&Tensor::from_slice(values).to_kind(t.kind()).view(shape));
    });
}

#[test]
fn synflow_of_a_two_layer_linear_net_by_hand() {
    let _rng = nas_runner::testkit::rng_lock();
    let b = LinearNetBuilder {
        input: (1, 1, 3),
        hidden: 2,
        classes: 2,
        bias: false,
        relu: true,
    };
    let mut vs = VarStore::new(Device::Cpu);
    let net = b.build(&vs.root());
    vs.double();
    set(
        &vs,
        "fc1.weight",
        &[1.0, -2.0, 0.5, 3.0, 0.5, -1.0],
        &[2, 3],
    );
    set(&vs, "fc2.weight", &[1.0, -1.0, 2.0, 0.5], &[2, 2]);
    synflow::linearize(&vs);
    // |W1| 1 = [3.5, 4.5]; R = 1^T |W2| [3.5, 4.5] = 8 + 9.25 = 17.25. The layer terms are
    // sum |W2| * h = R and sum |W1| * colsum|W2| = 3 * 3.5 + 1.5 * 4.5 = R: synflow = 2R.
    let v = number(synflow::score(&vs, net.as_ref(), b.input, Device::Cpu).unwrap());
    assert!((v - 34.5).abs() < 1e-12, "{v}");
}

#[test]
fn synflow_does_not_depend_on_the_data() {
    let _rng = nas_runner::testkit::rng_lock();
    let b = tiny(true);
    let c = ctx(3, 4);
    let spec = metrics::lookup("synflow").unwrap();
    let x1 = MetricBatch::random(4, b.input, 10, 1, Device::Cpu);
    let x2 = MetricBatch::random(4, b.input, 10, 2, Device::Cpu);
    let v1 = number(metrics::compute(spec, &b, &x1, &c).unwrap());
    let v2 = number(metrics::compute(spec, &b, &x2, &c).unwrap());
    assert_eq!(v1.to_bits(), v2.to_bits());
    assert!(v1 > 0.0 && v1.is_finite());
}

#[test]
fn naswot_on_a_known_activation_pattern() {
    let _rng = nas_runner::testkit::rng_lock();
    // Codes 101, 110, 001: agreements K = [[3,1,2],[1,3,0],[2,0,3]], det = 12.
    let x = Tensor::from_slice(&[1.0f32, -1.0, 2.0, 3.0, 4.0, -5.0, -1.0, -2.0, 6.0]);
    let b = ReluProbeBuilder {
        input: (1, 1, 3),
        classes: 2,
    };
    let batch = MetricBatch {
        images: x.view([3, 1, 1, 3]),
        labels: Tensor::from_slice(&[0i64, 1, 0]),
        normalization: nas_runner::data::Normalization {
            mean: vec![0.0],
            std: vec![1.0],
        },
    };
    let v = number(
        metrics::compute(metrics::lookup("naswot").unwrap(), &b, &batch, &ctx(0, 3)).unwrap(),
    );
    assert!((v - 12f64.ln()).abs() < 1e-9, "{v}");
    let k = naswot::kernel(&[x.view([3, 3])]);
    let expected =
        Tensor::from_slice(&[3.0f64, 1.0, 2.0, 1.0, 3.0, 0.0, 2.0, 0.0, 3.0]).view([3, 3]);
    assert!(k.equal(&expected));
    // Kernels of several ReLUs add up.
    let two = naswot::kernel(&[x.view([3, 3]), x.view([3, 3])]);
    assert!(two.equal(&(expected * 2.0)));
}

#[test]
fn cosine_of_known_weights() {
    let _rng = nas_runner::testkit::rng_lock();
    let t = |v: &[f32]| Tensor::from_slice(v);
    assert_eq!(cosine(&t(&[1.0, 0.0]), &t(&[0.0, 1.0])), 0.0);
    assert!((cosine(&t(&[1.0, 2.0]), &t(&[2.0, 4.0])) - 1.0).abs() < 1e-12);
    assert!(
        (cosine(
            &t(&[1.0, 0.0, 0.0, 1.0]).view([2, 2]),
            &t(&[1.0, 1.0, 0.0, 0.0]).view([2, 2])
        ) - 0.5)
            .abs()
            < 1e-12
    );
    assert!((cosine(&t(&[1.0, 0.0]), &t(&[-1.0, 0.0])) + 1.0).abs() < 1e-12);
}

#[test]
fn all_skip_cells_are_degenerate_and_not_trained() {
    let _rng = nas_runner::testkit::rng_lock();
    let b = tiny(false);
    let batch = MetricBatch::random(20, b.input, 10, 0, Device::Cpu);
    let spec = metrics::lookup("angle_loss").unwrap();
    let v = metrics::compute(spec, &b, &batch, &ctx(0, 20)).unwrap();
    assert_eq!(v, MetricValue::AngleLoss(DEGENERATE));
    // Not trained: the rule applies before the batch is even checked.
    let empty = MetricBatch::random(1, b.input, 10, 0, Device::Cpu);
    assert_eq!(
        metrics::compute(spec, &b, &empty, &ctx(0, 100)).unwrap(),
        MetricValue::AngleLoss(DEGENERATE)
    );
}

#[test]
fn angle_loss_trains_and_is_deterministic() {
    let _rng = nas_runner::testkit::rng_lock();
    let b = tiny(true);
    let batch = MetricBatch::random(20, b.input, 10, 5, Device::Cpu);
    let spec = metrics::lookup("angle_loss").unwrap();
    let c = ctx(7, 20);
    let a1 = metrics::compute(spec, &b, &batch, &c).unwrap();
    let a2 = metrics::compute(spec, &b, &batch, &c).unwrap();
    let (MetricValue::AngleLoss(a1), MetricValue::AngleLoss(a2)) = (a1, a2) else {
        panic!("angle_loss gives an object");
    };
    assert_eq!(
        (a1.cos.to_bits(), a1.loss.to_bits()),
        (a2.cos.to_bits(), a2.loss.to_bits())
    );
    assert!(a1.loss.is_finite() && a1.cos.is_finite());
    // Without augmentation the loss on the fixed batch falls over 50 steps.
    let one = Protocol {
        iterations: 1,
        augment: false,
        ..Protocol::default()
    };
    let fifty = Protocol {
        augment: false,
        ..Protocol::default()
    };
    let first = angle_loss::angle_loss_with(&b, &batch, 7, &one).unwrap();
    let last = angle_loss::angle_loss_with(&b, &batch, 7, &fifty).unwrap();
    assert!(last.loss < first.loss, "{} -> {}", first.loss, last.loss);
    // Different seeds, different weights.
    let other = metrics::compute(spec, &b, &batch, &ctx(8, 20)).unwrap();
    assert_ne!(other, MetricValue::AngleLoss(a1));
}

#[test]
fn params_equals_the_builder_count_and_the_var_store() {
    let _rng = nas_runner::testkit::rng_lock();
    for b in [tiny(true), tiny(false)] {
        let batch = MetricBatch::random(1, b.input, 10, 0, Device::Cpu);
        let v = number(
            metrics::compute(metrics::lookup("params").unwrap(), &b, &batch, &ctx(0, 1)).unwrap(),
        );
        assert_eq!(v, b.param_count() as f64);
        let vs = VarStore::new(Device::Cpu);
        let _net = b.build(&vs.root());
        let trainable: i64 = vs
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .map(|n| n as i64)
            .sum();
        assert_eq!(trainable, b.param_count());
    }
}

#[test]
fn every_metric_is_deterministic_on_cpu() {
    let _rng = nas_runner::testkit::rng_lock();
    let b = tiny(true);
    let batch = MetricBatch::random(12, b.input, 10, 11, Device::Cpu);
    let mut differs = Vec::new();
    for spec in metrics::registry() {
        let mut c = ctx(5, 12);
        c.options.insert("iterations".into(), 5.0);
        let v1 =
            metrics::compute(spec, &b, &batch, &c).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        let v2 = metrics::compute(spec, &b, &batch, &c).unwrap();
        let bits = |v: MetricValue| match v {
            MetricValue::Scalar(x) => vec![x.to_bits()],
            MetricValue::AngleLoss(a) => vec![a.cos.to_bits(), a.loss.to_bits()],
        };
        assert_eq!(bits(v1), bits(v2), "{} not bit-identical", spec.name);
        if let MetricValue::Scalar(x) = v1 {
            assert!(!x.is_nan(), "{} is NaN", spec.name);
        }
        let v3 = metrics::compute(spec, &b, &batch, &ctx(6, 12)).unwrap();
        if bits(v1) != bits(v3) {
            differs.push(spec.name);
        }
    }
    for name in [
        "grad_norm",
        "snip",
        "grasp",
        "fisher",
        "synflow",
        "zen",
        "angle_loss",
    ] {
        assert!(differs.contains(&name), "{name} ignores the seed");
    }
}

#[test]
fn an_input_independent_network_gives_values_not_errors() {
    // Nodes 1 and 2 are fed only through `none`, so the cell output and the logits do not
    // depend on the images: input gradients are undefined (jacob_cov once panicked on it).
    let _rng = nas_runner::testkit::rng_lock();
    let arch: Nb201Arch = "|none~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|"
        .parse()
        .unwrap();
    let opts = NetOptions {
        classes: 10,
        input_size: 8,
        width: Some(4),
        cells: Some(1),
        ..NetOptions::default()
    };
    let b = Nb201Builder::new(arch, &opts).unwrap();
    let batch = MetricBatch::random(8, (3, 8, 8), 10, 2, Device::Cpu);
    for spec in metrics::registry() {
        let mut c = ctx(1, 8);
        c.options.insert("iterations".into(), 2.0);
        let v =
            metrics::compute(spec, &b, &batch, &c).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        if spec.name == "jacob_cov" {
            assert!(number(v).is_nan(), "constant Jacobian rows: NaN");
        }
    }
}

#[test]
fn unknown_metric_lists_valid_names() {
    let _rng = nas_runner::testkit::rng_lock();
    let e = metrics::lookup("synflo").unwrap_err().to_string();
    assert!(
        e.contains("synflo") && e.contains("synflow") && e.contains("angle_loss"),
        "{e}"
    );
}

#[test]
fn too_small_a_batch_is_an_error_not_a_panic() {
    let _rng = nas_runner::testkit::rng_lock();
    let b = tiny(true);
    let batch = MetricBatch::random(4, b.input, 10, 0, Device::Cpu);
    let e =
        metrics::compute(metrics::lookup("naswot").unwrap(), &b, &batch, &ctx(0, 64)).unwrap_err();
    assert!(e.to_string().contains("64"), "{e}");
}

#[test]
fn helper_values_by_hand() {
    let _rng = nas_runner::testkit::rng_lock();
    // fisher: g_nk = a * g = [3, 8]; 0.5 * mean_n g^2 summed = 4.5 + 32.
    let a = Tensor::from_slice(&[1.0f32, 2.0]).view([1, 2]);
    let g = Tensor::from_slice(&[3.0f32, 4.0]).view([1, 2]);
    assert_eq!(fisher::fisher_of_layer(&a, &g).double_value(&[]), 36.5);
    // jacob_cov: two perfectly correlated rows: eigenvalues 0 and 2.
    let j = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 2.0, 4.0, 6.0]).view([2, 3]);
    let k = 1e-5f64;
    let expected = -((k.ln() + 1.0 / k) + ((2.0 + k).ln() + 1.0 / (2.0 + k)));
    let got = jacob_cov::score_of_jacobian(&j);
    assert!(
        (got - expected).abs() < 1e-6 * expected.abs(),
        "{got} vs {expected}"
    );
    // A constant row has no correlation: NaN.
    let flat = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 2.0, 4.0, 6.0]).view([2, 3]);
    assert!(jacob_cov::score_of_jacobian(&flat).is_nan());
    // NTK condition number of diag(1, 4).
    let gram = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 4.0]).view([2, 2]);
    assert!((ntk_cond::condition_number(&gram) - 4.0).abs() < 1e-6);
    // Linear regions: patterns 10, 10, 01 -> 2 distinct.
    let r = Tensor::from_slice(&[1.0f32, -1.0, 2.0, -3.0, -1.0, 1.0]).view([3, 2]);
    assert_eq!(linear_regions::count_patterns(&[r]), 2.0);
    // Zen: per-image L1 gap 2 -> ln 2; one BN with variance 4 -> ln 2.
    let fx = Tensor::zeros([2, 1, 1, 2], (Kind::Float, Device::Cpu));
    let fy = Tensor::ones([2, 1, 1, 2], (Kind::Float, Device::Cpu));
    let vars = [Tensor::from_slice(&[4.0f32, 4.0])];
    assert!((zen::zen_value(&fx, &fy, &vars) - 2.0 * 2f64.ln()).abs() < 1e-12);
    // A BN of an all-zero input (variance 0) adds nothing instead of -inf.
    let with_dead = [
        Tensor::from_slice(&[4.0f32, 4.0]),
        Tensor::zeros([2], (Kind::Float, Device::Cpu)),
    ];
    assert!((zen::zen_value(&fx, &fy, &with_dead) - 2.0 * 2f64.ln()).abs() < 1e-12);
}
