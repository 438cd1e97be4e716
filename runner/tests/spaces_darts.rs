//! DARTS space: genotype forms, named genotypes, sampling, mutation, published network sizes,
//! and the networks' execution.
use nas_runner::nn::{DartsNetKind, NetOptions};
use nas_runner::nn::{Forward, NetBuilder};
use nas_runner::space::darts::DartsBuilder;
use nas_runner::space::darts::{DartsOp, Genotype, NAMED};
use nas_runner::space::{builder, SpaceError};
use proptest::prelude::*;
use rand::SeedableRng;
use tch::{nn::VarStore, Device, Kind, Tensor};

proptest! {
    #[test]
    fn text_and_json_round_trip(seed in any::<u64>()) {
        let g = Genotype::sample_n(1, seed).remove(0);
        prop_assert!(g.follows_darts_rules());
        prop_assert_eq!(&Genotype::resolve(&g.to_string()).unwrap(), &g);
        prop_assert_eq!(&Genotype::resolve(&g.to_json()).unwrap(), &g);
    }

    #[test]
    fn resolve_never_panics(s in ".{0,200}") {
        let _ = Genotype::resolve(&s);
        let _ = Genotype::resolve(&format!("Genotype({s}"));
        let _ = Genotype::resolve(&format!("{{{s}"));
    }

    #[test]
    fn resolve_never_panics_on_damaged_genotypes(at in 0usize..400, c in any::<char>(), del in any::<bool>()) {
        let mut chars: Vec<char> = Genotype::named("PDARTS").unwrap().to_string().chars().collect();
        let at = at % chars.len();
        if del { chars.remove(at); } else { chars[at] = c; }
        let s: String = chars.into_iter().collect();
        if let Err(SpaceError::Parse { pos, .. }) = Genotype::resolve(&s) {
            prop_assert!(pos <= s.chars().count());
        }
    }
}

#[test]
fn named_genotypes_resolve() {
    for (name, _) in NAMED {
        let g = Genotype::resolve(name).unwrap();
        assert_eq!(Genotype::resolve(&g.to_string()).unwrap(), g, "{name}");
    }
    let v2 = Genotype::resolve("darts-v2").unwrap();
    assert_eq!(v2, Genotype::named("DARTS_V2").unwrap());
    assert_eq!(v2.normal.edges[7], (DartsOp::DilConv3x3, 2));
    assert_eq!(v2.reduce.concat, vec![2, 3, 4, 5]);
    assert!(v2.follows_darts_rules());
    // NASNet has five nodes, repeated inputs and a partial concat: valid, but not DARTS rules.
    let nas = Genotype::resolve("NASNet").unwrap();
    assert_eq!(nas.normal.steps(), 5);
    assert_eq!(nas.reduce.concat, vec![4, 5, 6]);
    assert!(!nas.follows_darts_rules());
}

#[test]
fn textual_form_accepts_python_spellings() {
    let s = r#"Genotype(
        normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2),],
        normal_concat=range(2, 6),
        reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1),
                ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)],
        reduce_concat=[2, 3, 4, 5],
    )"#;
    assert_eq!(
        Genotype::resolve(s).unwrap(),
        Genotype::named("DARTS_V2").unwrap()
    );
    let json = r#"{"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0],
        ["sep_conv_3x3", 1], ["sep_conv_3x3", 1], ["skip_connect", 0], ["skip_connect", 0],
        ["dil_conv_3x3", 2]], "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1],
        ["skip_connect", 2], ["max_pool_3x3", 1], ["max_pool_3x3", 0], ["skip_connect", 2],
        ["skip_connect", 2], ["max_pool_3x3", 1]]}"#;
    assert_eq!(
        Genotype::resolve(json).unwrap(),
        Genotype::named("DARTS_V2").unwrap()
    );
}

#[test]
fn bad_genotypes_are_explained() {
    let v2 = Genotype::named("DARTS_V2").unwrap().to_string();
    let bad_op = v2.replacen("sep_conv_3x3", "sep_conv_9x9", 1);
    match Genotype::resolve(&bad_op) {
        Err(SpaceError::Parse { pos, found, .. }) => {
            assert_eq!(pos, v2.find("'sep_conv_3x3'").unwrap());
            assert!(found.contains("sep_conv_9x9"));
        }
        other => panic!("{other:?}"),
    }
    // Node 2 (the first) may read states 0 and 1 only.
    let bad_input = v2.replacen("('sep_conv_3x3', 0)", "('sep_conv_3x3', 2)", 1);
    let e = Genotype::resolve(&bad_input).unwrap_err().to_string();
    assert!(e.contains("normal[0]") && e.contains("got input 2"), "{e}");
    let e = Genotype::resolve("Genotype(normal=[('sep_conv_3x3', 0)]").unwrap_err();
    assert!(matches!(e, SpaceError::Parse { .. }), "{e}");
    let e = Genotype::resolve("DARTS_V9").unwrap_err().to_string();
    assert!(e.contains("DARTS_V2") && e.contains("PC_DARTS"), "{e}");
    let e = Genotype::resolve(r#"{"normal": [["sep_conv_3x3", 0]], "reduce": 3}"#).unwrap_err();
    assert!(matches!(e, SpaceError::Parse { .. }), "{e}");
    let e = Genotype::resolve(&v2.replace("reduce_concat=range(2, 6)", "reduce_concat=[2, 9]"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("reduce_concat[1]"), "{e}");
    // A range end from a damaged length is refused before it is counted out.
    let huge = v2.replace(
        "reduce_concat=range(2, 6)",
        "reduce_concat=range(2, 90000000000000)",
    );
    let e = Genotype::resolve(&huge).unwrap_err().to_string();
    assert!(e.contains("90000000000000") && e.contains("at most"), "{e}");
}

#[test]
fn sampling_and_mutation_follow_darts_rules() {
    let gs = Genotype::sample_n(200, 42);
    assert_eq!(gs, Genotype::sample_n(200, 42));
    assert_ne!(gs, Genotype::sample_n(200, 43));
    assert!(gs.iter().all(Genotype::follows_darts_rules));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut g = Genotype::named("DARTS_V2").unwrap();
    for _ in 0..500 {
        let m = g.mutate(&mut rng);
        assert!(m.follows_darts_rules(), "{m}");
        let diff = |a: &Vec<(DartsOp, usize)>, b: &Vec<(DartsOp, usize)>| {
            a.iter().zip(b).filter(|(x, y)| x != y).count()
        };
        assert_eq!(
            diff(&g.normal.edges, &m.normal.edges) + diff(&g.reduce.edges, &m.reduce.edges),
            1
        );
        g = m;
    }
}

fn within(value: i64, target: f64, tol: f64) -> bool {
    (value as f64 - target).abs() <= tol * target
}

#[test]
fn darts_v2_matches_published_sizes() {
    let cifar = builder("darts", "DARTS_V2", &NetOptions::default()).unwrap();
    assert!(
        within(cifar.param_count(), 3.3e6, 0.03),
        "CIFAR params {}",
        cifar.param_count()
    );
    let imagenet = builder(
        "darts",
        "DARTS_V2",
        &NetOptions::for_dataset("imagenet").unwrap(),
    )
    .unwrap();
    assert!(
        within(imagenet.param_count(), 4.7e6, 0.02),
        "ImageNet params {}",
        imagenet.param_count()
    );
}

/// PC-DARTS' ImageNet genotype (Xu et al., ICLR 2020, searched on ImageNet).
const PC_DARTS_IMAGENET: &str = "Genotype(normal=[('skip_connect', 1), ('sep_conv_3x3', 0), \
    ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), \
    ('sep_conv_3x3', 1), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), \
    reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_5x5', 2), ('max_pool_3x3', 1), \
    ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 3)], \
    reduce_concat=range(2, 6))";

/// DARTS `flops` on ImageNet 224 count as the `ptflops` counter does: conv and linear
/// multiply-adds plus one per ReLU output and pooling input element, two per BN input element.
/// That convention gives the published numbers of P-DARTS (557M, 4.9M params) and PC-DARTS
/// (597M, 5.3M) and the 544.59M a ptflops run gives for DARTS_V2 (quark0/darts#46). DARTS' own
/// 574M is reproduced by no convention tried: conv + fc alone gives 529.9M (D-X-Y's recount in
/// the same thread: 523M), the auxiliary head adds 1.6M, and a width or depth that reaches 574M
/// contradicts the paper's 4.7M parameters.
#[test]
fn darts_imagenet_flops_reproduce_the_published_mobile_setting_numbers() {
    let opts = NetOptions::for_dataset("imagenet").unwrap();
    let count = |g: &str| {
        let b = builder("darts", g, &opts).unwrap();
        (b.flops(), b.param_count())
    };
    let millions = |n: i64| (n as f64 / 1e6 * 100.0).round() / 100.0;
    let (v2, v2_params) = count("DARTS_V2");
    assert_eq!(millions(v2), 544.59, "{v2}");
    assert!(within(v2_params, 4.7e6, 0.01), "{v2_params}");
    let (p, p_params) = count("PDARTS");
    assert_eq!((p as f64 / 1e6).round(), 557.0, "{p}");
    assert!(within(p_params, 4.9e6, 0.01), "{p_params}");
    let (pc, pc_params) = count(PC_DARTS_IMAGENET);
    assert_eq!((pc as f64 / 1e6).round(), 597.0, "{pc}");
    assert!(within(pc_params, 5.3e6, 0.01), "{pc_params}");
    // Conv + fc alone (NAS-Bench-201's convention) gives 529,912,552 for DARTS_V2.
    assert!(v2 > 529_912_552 && v2 < 574_000_000);
}

#[test]
fn built_network_has_the_analytic_parameter_count() {
    for name in ["DARTS_V2", "NASNet"] {
        let opts = NetOptions {
            auxiliary: true,
            ..NetOptions::default()
        };
        let b = DartsBuilder::new(Genotype::named(name).unwrap(), &opts).unwrap();
        let vs = VarStore::new(Device::Cpu);
        let _net = b.build(&vs.root());
        let built: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert!(b.aux_params() > 0);
        assert_eq!(built, b.param_count() + b.aux_params(), "{name}");
    }
}

#[test]
fn cifar_network_runs_with_aux_head_and_drop_path() {
    tch::manual_seed(0);
    let opts = NetOptions {
        width: Some(4),
        cells: Some(5),
        auxiliary: true,
        ..NetOptions::default()
    };
    let b = DartsBuilder::new(Genotype::named("PC_DARTS").unwrap(), &opts).unwrap();
    let vs = VarStore::new(Device::Cpu);
    let net = b.build(&vs.root());
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let mut f = Forward {
        train: true,
        drop_path_prob: 0.5,
        relu_inputs: Some(Vec::new()),
        ..Forward::default()
    };
    let y = net.forward(&x, &mut f);
    assert_eq!(y.size(), [2, 10]);
    assert_eq!(f.aux_logits.as_ref().unwrap().size(), [2, 10]);
    assert!(!f.relu_inputs.unwrap().is_empty());
    assert_eq!(f.features.unwrap().size(), [2, 64, 8, 8]);
    // Eval: no aux logits, no drop-path (deterministic).
    let mut e1 = Forward::eval();
    let a = net.forward(&x, &mut e1);
    assert!(e1.aux_logits.is_none());
    let b2 = net.forward(&x, &mut Forward::eval());
    assert!(f64::try_from((&a - &b2).abs().max()).unwrap() == 0.0);
    // Drop-path changes the training output.
    let t1 = net.forward(
        &x,
        &mut Forward {
            train: true,
            drop_path_prob: 0.5,
            ..Forward::default()
        },
    );
    let t2 = net.forward(
        &x,
        &mut Forward {
            train: true,
            drop_path_prob: 0.5,
            ..Forward::default()
        },
    );
    assert!(f64::try_from((&t1 - &t2).abs().max()).unwrap() > 0.0);
}

#[test]
fn imagenet_network_runs() {
    let opts = NetOptions {
        width: Some(8),
        cells: Some(3),
        input_size: 64,
        classes: 7,
        darts_kind: DartsNetKind::ImageNet,
        ..NetOptions::default()
    };
    let b = DartsBuilder::new(Genotype::named("DARTS_V1").unwrap(), &opts).unwrap();
    let vs = VarStore::new(Device::Cpu);
    let net = b.build(&vs.root());
    let y = net.forward(
        &Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu)),
        &mut Forward::train(),
    );
    assert_eq!(y.size(), [2, 7]);
    let built: i64 = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    assert_eq!(built, b.param_count());
    // The auxiliary head needs a map that pools to 2x2.
    let e = DartsBuilder::new(
        b.genotype.clone(),
        &NetOptions {
            auxiliary: true,
            ..opts.clone()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("auxiliary"), "{e}");
    let e = DartsBuilder::new(
        b.genotype.clone(),
        &NetOptions {
            input_size: 100,
            ..opts
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("multiple of 32"), "{e}");
}
