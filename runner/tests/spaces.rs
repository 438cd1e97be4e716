//! NAS-Bench-201: encoding, enumeration, isomorphism, sampling, mutation, benchmark table,
//! exact parameter and FLOP counts, and the network's execution.
use nas_runner::nn::NetOptions;
use nas_runner::nn::{Forward, NetBuilder};
use nas_runner::space::nb201::Nb201Builder;
use nas_runner::space::nb201::{Nb201Arch, Nb201Op, Nb201Table, EDGES, SIZE};
use nas_runner::space::SpaceError;
use proptest::prelude::*;
use rand::SeedableRng;
use std::collections::HashSet;
use tch::{nn::VarStore, Device, Kind, Tensor};

const BEST: &str =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

fn arb_arch() -> impl Strategy<Value = Nb201Arch> {
    proptest::collection::vec(0usize..5, EDGES).prop_map(|v| {
        let mut ops = [Nb201Op::None; EDGES];
        for (o, i) in ops.iter_mut().zip(v) {
            *o = Nb201Op::ALL[i];
        }
        Nb201Arch { ops }
    })
}

proptest! {
    #[test]
    fn format_parse_round_trip(a in arb_arch()) {
        let s = a.to_string();
        let back: Nb201Arch = s.parse().unwrap();
        prop_assert_eq!(back, a);
        prop_assert_eq!(back.to_string(), s);
    }

    #[test]
    fn parse_never_panics_on_any_text(s in ".{0,120}") {
        if let Err(SpaceError::Parse { pos, .. }) = s.parse::<Nb201Arch>() {
            prop_assert!(pos <= s.chars().count());
        }
    }

    #[test]
    fn parse_never_panics_on_damaged_archs(a in arb_arch(), at in 0usize..200, c in any::<char>(),
                                           kind in 0u8..3) {
        let mut chars: Vec<char> = a.to_string().chars().collect();
        let at = at % (chars.len() + 1);
        match kind {
            0 => chars.insert(at, c),
            1 if at < chars.len() => { chars.remove(at); }
            _ if at < chars.len() => chars[at] = c,
            _ => chars.push(c),
        }
        let s: String = chars.into_iter().collect();
        match s.parse::<Nb201Arch>() {
            Ok(b) => prop_assert_eq!(b.to_string(), s),
            Err(SpaceError::Parse { pos, .. }) => prop_assert!(pos <= s.chars().count()),
            Err(e) => prop_assert!(false, "unexpected error kind {e}"),
        }
    }
}

#[test]
fn parse_errors_name_position_and_expectation() {
    let cases = [
        (
            "|nor_conv_3x3~0|+|conv~0|nor_conv_3x3~1|+|a~0|b~1|c~2|",
            18,
            "an op",
        ),
        ("|nor_conv_3x3~1|+", 14, "input node 0 of node 1"),
        ("|nor_conv_3x3~0|", 16, "'+' before the edges into node 2"),
        ("nor_conv_3x3~0|", 0, "'|' opening the edges into node 1"),
        (&format!("{BEST}|"), BEST.len(), "end of input"),
        ("", 0, "'|'"),
    ];
    for (s, pos, expected) in cases {
        match s.parse::<Nb201Arch>() {
            Err(SpaceError::Parse {
                pos: p,
                expected: e,
                ..
            }) => {
                assert_eq!(p, pos, "{s}");
                assert!(e.contains(expected), "{s}: expected {expected:?} in {e:?}");
            }
            other => panic!("{s}: expected a parse error, got {other:?}"),
        }
    }
    let msg = "|skip~0|".parse::<Nb201Arch>().unwrap_err().to_string();
    assert!(
        msg.contains("position 1") && msg.contains("'skip'"),
        "{msg}"
    );
}

#[test]
fn enumeration_covers_the_space_once() {
    let all: Vec<Nb201Arch> = Nb201Arch::all().collect();
    assert_eq!(all.len(), SIZE);
    let set: HashSet<Nb201Arch> = all.iter().copied().collect();
    assert_eq!(set.len(), SIZE);
    let strings: HashSet<String> = all.iter().map(|a| a.to_string()).collect();
    assert_eq!(strings.len(), SIZE);
}

#[test]
fn isomorphism_classes_number_6466() {
    let keys: HashSet<String> = Nb201Arch::all().map(|a| a.canonical_key()).collect();
    assert_eq!(keys.len(), 6466);
    // conv(x) + conv(x) reached through node 1 and node 2, or through node 1 and directly.
    let a: Nb201Arch =
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|"
            .parse()
            .unwrap();
    let b: Nb201Arch =
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_3x3~0|none~1|skip_connect~2|"
            .parse()
            .unwrap();
    assert_ne!(a, b);
    assert_eq!(a.canonical_key(), b.canonical_key());
    // A `none` into a lone node zeroes whatever op follows.
    let z1: Nb201Arch = "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|"
        .parse()
        .unwrap();
    let z2: Nb201Arch = "|none~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|"
        .parse()
        .unwrap();
    assert_eq!(z1.canonical_key(), z2.canonical_key());
    let c: Nb201Arch = BEST.parse().unwrap();
    assert_ne!(c.canonical_key(), a.canonical_key());
}

#[test]
fn sampling_is_seeded_and_uniformish() {
    let a = Nb201Arch::sample_n(2000, 7);
    assert_eq!(a, Nb201Arch::sample_n(2000, 7));
    assert_ne!(a, Nb201Arch::sample_n(2000, 8));
    // Every op appears on every edge with frequency near 1/5.
    for e in 0..EDGES {
        for op in Nb201Op::ALL {
            let n = a.iter().filter(|x| x.ops[e] == op).count();
            assert!((300..500).contains(&n), "edge {e} op {op:?}: {n} of 2000");
        }
    }
}

#[test]
fn mutation_changes_exactly_one_edge() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut a: Nb201Arch = BEST.parse().unwrap();
    let mut edges_hit = HashSet::new();
    for _ in 0..1000 {
        let b = a.mutate(&mut rng);
        let diff: Vec<usize> = (0..EDGES).filter(|&e| a.ops[e] != b.ops[e]).collect();
        assert_eq!(diff.len(), 1, "{a} -> {b}");
        edges_hit.insert(diff[0]);
        a = b;
    }
    assert_eq!(edges_hit.len(), EDGES);
}

#[test]
fn benchmark_table_maps_index_and_arch() {
    let Some(path) = nas_runner::testkit::shared_data(
        env!("CARGO_MANIFEST_DIR"),
        "nb201/accuracy.csv",
        "benchmark_table_maps_index_and_arch",
    ) else {
        return;
    };
    let t = Nb201Table::from_csv(&path).unwrap();
    assert_eq!(t.len(), SIZE);
    assert_eq!(
        t.arch(0).unwrap().to_string(),
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    );
    for i in [0, 1, 777, 15_624] {
        assert_eq!(t.index(&t.arch(i).unwrap()), Some(i));
    }
    let all: HashSet<Nb201Arch> = (0..SIZE).map(|i| t.arch(i).unwrap()).collect();
    assert_eq!(all.len(), SIZE);
    assert!(t.value(1, "cifar10_test").unwrap() > 90.0);
}

#[test]
fn table_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.csv");
    std::fs::write(&p, format!("index,arch,acc\n0,{BEST},1.5\n1,|bad|,2\n")).unwrap();
    let e = Nb201Table::from_csv(&p).unwrap_err().to_string();
    assert!(e.contains("line 3"), "{e}");
    std::fs::write(&p, format!("index,arch,acc\n1,{BEST},1.5\n")).unwrap();
    assert!(Nb201Table::from_csv(&p).is_err());
    std::fs::write(&p, format!("index,arch,acc\n0,{BEST},1.5\n")).unwrap();
    let t = Nb201Table::from_csv(&p).unwrap();
    assert_eq!(t.value(0, "acc"), Some(1.5));
}

fn builder(a: Nb201Arch, classes: i64) -> Nb201Builder {
    Nb201Builder::new(
        a,
        &NetOptions {
            classes,
            ..NetOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn param_count_matches_the_benchmark_formula_for_every_arch() {
    for k in [10i64, 100, 120] {
        for a in Nb201Arch::all() {
            let (n3, n1) = a.conv_counts();
            let want = 72_656 + 65 * k + 243_040 * n3 as i64 + 28_000 * n1 as i64;
            assert_eq!(builder(a, k).param_count(), want, "{a} K={k}");
        }
    }
}

fn varstore_params(vs: &VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

#[test]
fn built_network_has_the_analytic_parameter_count() {
    let mut archs = Nb201Arch::sample_n(6, 11);
    archs.push(Nb201Arch {
        ops: [Nb201Op::None; EDGES],
    });
    archs.push(Nb201Arch {
        ops: [Nb201Op::NorConv3x3; EDGES],
    });
    for (i, a) in archs.into_iter().enumerate() {
        let k = [10, 100, 120][i % 3];
        let b = builder(a, k);
        let vs = VarStore::new(Device::Cpu);
        let _net = b.build(&vs.root());
        assert_eq!(varstore_params(&vs), b.param_count(), "{a}");
    }
}

#[test]
fn flops_match_a_hand_computed_small_net() {
    // C=2, N=1, 3 classes, 1x4x4 input, one 3x3 and one 1x1 conv edge:
    // stem 16*2*1*9 = 288; each cell 16*2*2*9 + 16*2*2 = 640 (4x4, 2 ch), 4*4*4*9 + 4*4*4 = 640
    // (2x2, 4 ch), 1*8*8*9 + 1*8*8 = 640 (1x1, 8 ch); reductions 4*4*2*9 + 4*4*4*9 + 4*4*2 =
    // 896 and 1*8*4*9 + 1*8*8*9 + 1*8*4 = 896; linear 8*3 + 3 = 27.
    let a: Nb201Arch =
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|"
            .parse()
            .unwrap();
    let opts = NetOptions {
        classes: 3,
        input_channels: 1,
        input_size: 4,
        width: Some(2),
        cells: Some(1),
        ..NetOptions::default()
    };
    let b = Nb201Builder::new(a, &opts).unwrap();
    assert_eq!(b.flops(), 288 + 3 * 640 + 2 * 896 + 27);
    let parts = b.breakdown();
    let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "stem",
            "cell0",
            "reduction1",
            "cell1",
            "reduction2",
            "cell2",
            "head"
        ]
    );
    assert_eq!(parts[3].flops, 640);
    // The benchmark's CIFAR-10 network: 7,782,400 + 65*K fixed, 35,389,440 per 3x3 edge and
    // 3,932,160 per 1x1 edge (all cells of all stages).
    let c = builder(BEST.parse().unwrap(), 10);
    assert_eq!(c.flops(), 7_782_400 + 650 + 5 * 35_389_440);
    // Counting does not depend on pruning.
    let unpruned = Nb201Builder::new(
        a,
        &NetOptions {
            prune: false,
            ..opts
        },
    )
    .unwrap();
    assert_eq!(unpruned.flops(), b.flops());
}

#[test]
fn options_are_validated() {
    let a: Nb201Arch = BEST.parse().unwrap();
    let e = Nb201Builder::new(
        a,
        &NetOptions {
            input_size: 30,
            ..NetOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("multiple of 4"), "{e}");
    assert!(Nb201Builder::new(
        a,
        &NetOptions {
            classes: 0,
            ..NetOptions::default()
        }
    )
    .is_err());
    let fm = NetOptions::for_dataset("fashion-mnist").unwrap();
    let b = Nb201Builder::new(a, &fm).unwrap();
    assert_eq!(b.input_shape(), (1, 28, 28));
    let vs = VarStore::new(Device::Cpu);
    let net = b.build(&vs.root());
    let y = net.forward(
        &Tensor::randn([2, 1, 28, 28], (Kind::Float, Device::Cpu)),
        &mut Forward::eval(),
    );
    assert_eq!(y.size(), [2, 10]);
}

fn small(a: Nb201Arch, prune: bool) -> Nb201Builder {
    let opts = NetOptions {
        width: Some(4),
        cells: Some(1),
        input_size: 8,
        prune,
        ..NetOptions::default()
    };
    Nb201Builder::new(a, &opts).unwrap()
}

#[test]
fn forward_honours_every_field() {
    tch::manual_seed(0);
    let a: Nb201Arch = BEST.parse().unwrap();
    let b = small(a, true);
    let vs = VarStore::new(Device::Cpu);
    let net = b.build(&vs.root());
    let x = Tensor::randn([4, 3, 8, 8], (Kind::Float, Device::Cpu));
    let mut f = Forward {
        train: true,
        relu_inputs: Some(Vec::new()),
        layer_outputs: Some(Vec::new()),
        bn_batch_vars: Some(Vec::new()),
        ..Forward::default()
    };
    let y = net.forward(&x, &mut f);
    assert_eq!(y.size(), [4, 10]);
    // 5 conv edges x 3 cells + 2 ReLUs per reduction x 2 + the head's ReLU.
    assert_eq!(f.relu_inputs.as_ref().unwrap().len(), 15 + 4 + 1);
    // stem + 15 edge convs + 3 per reduction x 2 + the classifier.
    assert_eq!(f.layer_outputs.as_ref().unwrap().len(), 1 + 15 + 6 + 1);
    // stem + 15 edge BNs + 2 per reduction x 2 + head.
    let vars = f.bn_batch_vars.as_ref().unwrap();
    assert_eq!(vars.len(), 1 + 15 + 4 + 1);
    assert_eq!(vars[0].size(), [4]);
    assert_eq!(f.features.as_ref().unwrap().size(), [4, 16, 2, 2]);
    assert!(f.aux_logits.is_none());
    // The classifier weight shares storage with the network.
    assert_eq!(net.classifier_weight().size(), [10, 16]);
    // Eval mode records no batch variances; no_bn skips every BN and changes the result.
    let mut e = Forward {
        bn_batch_vars: Some(Vec::new()),
        ..Forward::eval()
    };
    let ye = net.forward(&x, &mut e);
    assert!(e.bn_batch_vars.unwrap().is_empty());
    let mut nb = Forward {
        no_bn: true,
        train: true,
        bn_batch_vars: Some(Vec::new()),
        ..Forward::default()
    };
    let yn = net.forward(&x, &mut nb);
    assert!(nb.bn_batch_vars.unwrap().is_empty());
    assert!(f64::try_from((&yn - &ye).abs().max()).unwrap() > 1e-4);
    assert!(f64::try_from(yn.isfinite().all().to_kind(Kind::Float)).unwrap() == 1.0);
}

/// Outputs and gradients of pruned and unpruned execution, with the same weights.
fn compare_pruned(a: Nb201Arch, train: bool) {
    tch::manual_seed(1);
    let vs_p = VarStore::new(Device::Cpu);
    let net_p = small(a, true).build(&vs_p.root());
    let mut vs_u = VarStore::new(Device::Cpu);
    let net_u = small(a, false).build(&vs_u.root());
    vs_u.copy(&vs_p).unwrap();
    let x = Tensor::randn([3, 3, 8, 8], (Kind::Float, Device::Cpu));
    let run = |net: &dyn nas_runner::nn::Net| {
        let mut f = if train {
            Forward::train()
        } else {
            Forward::eval()
        };
        let y = net.forward(&x, &mut f);
        (y * Tensor::arange(10, (Kind::Float, Device::Cpu)))
            .sum(Kind::Float)
            .backward();
    };
    let mut f = if train {
        Forward::train()
    } else {
        Forward::eval()
    };
    let yp = net_p.forward(&x, &mut f);
    let mut f = if train {
        Forward::train()
    } else {
        Forward::eval()
    };
    let yu = net_u.forward(&x, &mut f);
    let d = f64::try_from((&yp - &yu).abs().max()).unwrap();
    assert!(d <= 1e-6, "{a} train={train}: outputs differ by {d}");
    run(net_p.as_ref());
    run(net_u.as_ref());
    let vp = vs_p.variables();
    let vu = vs_u.variables();
    for (name, tp) in &vp {
        let tu = &vu[name];
        let gp = tp.grad();
        let gu = tu.grad();
        let gp = if gp.defined() { gp } else { tp.zeros_like() };
        let gu = if gu.defined() { gu } else { tu.zeros_like() };
        let d = f64::try_from((&gp - &gu).abs().max()).unwrap();
        assert!(
            d <= 1e-6,
            "{a} train={train}: gradient of {name} differs by {d}"
        );
    }
}

#[test]
fn pruned_and_unpruned_execution_agree() {
    let cases = [
        BEST,
        // node 2 fed only by `none`, then convolved: zeros in, BN bias out.
        "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        // nodes 1 and 2 dead ends.
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|none~2|",
        // output fed only by `none`.
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    ];
    let mut archs: Vec<Nb201Arch> = cases.iter().map(|s| s.parse().unwrap()).collect();
    archs.extend(Nb201Arch::sample_n(4, 5));
    for a in archs {
        compare_pruned(a, true);
        compare_pruned(a, false);
    }
}

#[test]
fn every_space_answers_the_search_space_trait_the_same_way() {
    use nas_runner::space::SPACES;
    for space in SPACES {
        let name = space.name().as_str();
        let archs = space.sample(4, 11);
        assert_eq!(archs.len(), 4, "{name}");
        assert_eq!(archs, space.sample(4, 11), "{name}: sampling is seeded");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for a in &archs {
            // Canonical text is a fixed point, and it builds.
            assert_eq!(&space.canonical(a).unwrap(), a, "{name}");
            let b = space.builder(a, &NetOptions::default()).unwrap();
            assert!(b.param_count() > 0 && b.flops() > 0, "{name} {a}");
            let m = space.mutate(a, &mut rng).unwrap();
            assert_ne!(&m, a, "{name}: a mutation changes the architecture");
            assert_eq!(space.canonical(&m).unwrap(), m, "{name}");
        }
        assert!(space.canonical("not an architecture").is_err(), "{name}");
    }
    let nb201 = nas_runner::space::by_name("nb201").unwrap();
    let all: HashSet<String> = nb201.enumerate().expect("NB201 is listed").collect();
    assert_eq!(all.len(), SIZE);
    assert!(nas_runner::space::by_name("darts")
        .unwrap()
        .enumerate()
        .is_none());
}

/// NB201 `flops` count as the NAS-Bench-201 cost tables do (AutoDL-Projects'
/// `get_model_infos`: convolutions and linear layers with their bias adds; its pooling hooks are
/// left out of the sum, and BN, ReLU and additions have none). On CIFAR-10 that is
/// 7,783,050 + 15 x (2,359,296 n3 + 262,144 n1) for n3 3x3 and n1 1x1 convolution edges, so
/// `flops` ranks the cells exactly as `params` does: a pooling edge costs nothing in the
/// benchmark's own convention. Checked on every cell against that closed form and against
/// values the benchmark publishes (NATS-Bench issues 24 and 36; the tables' minima and maxima).
#[test]
fn nb201_flops_count_as_the_benchmark_tables_do_on_every_cell() {
    let flops = |arch: &str, dataset: &str| {
        let opts = NetOptions::for_dataset(dataset).unwrap();
        Nb201Builder::new(arch.parse().unwrap(), &opts)
            .unwrap()
            .flops()
    };
    let all_3x3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";
    let all_pool = "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|";
    let published = [
        (all_3x3, "cifar10", 220_119_690),
        (all_pool, "cifar10", 7_783_050),
        (all_3x3, "cifar100", 220_125_540),
        (all_3x3, "imagenet16-120", 55_037_560),
        ("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|", "cifar10", 15_647_370),
        ("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|", "cifar10", 113_951_370),
    ];
    for (arch, dataset, want) in published {
        assert_eq!(flops(arch, dataset), want, "{arch} on {dataset}");
    }
    let opts = NetOptions::default();
    for a in Nb201Arch::all() {
        let (n3, n1) = a.conv_counts();
        let closed_form = 7_783_050 + 15 * (2_359_296 * n3 as i64 + 262_144 * n1 as i64);
        assert_eq!(
            Nb201Builder::new(a, &opts).unwrap().flops(),
            closed_form,
            "{a}"
        );
    }
}
