//! `nas-runner inspect`: the size of one architecture without building it (parameters and
//! multiply-adds, in total and per stem, cell or block, and head), as JSON.
use crate::nn::NetBuilder;
use crate::nn::{DartsNetKind, NetOptions};
use crate::space::darts::Genotype;
use crate::space::nb201::Nb201Arch;
use crate::space::nb201::Nb201Builder;
use crate::space::SpaceError;
use nas_api::spec::SpaceName;
use serde_json::{json, Value};

/// Arguments of `inspect`.
#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// Search space: `nb201` or `darts`.
    #[arg(long)]
    pub space: String,
    /// NB201 architecture string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.
    #[arg(long)]
    pub arch: Option<String>,
    /// DARTS genotype: a name (DARTS_V1, DARTS_V2, PC_DARTS, PDARTS, NASNet), JSON or
    /// `Genotype(...)`.
    #[arg(long)]
    pub genotype: Option<String>,
    /// Data set the network is sized for: cifar10, cifar100, imagenet16-120, imagenet,
    /// fashion-mnist (DARTS: cifar* builds the CIFAR network, imagenet the ImageNet one).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Number of classes (default: the data set's).
    #[arg(long)]
    pub classes: Option<i64>,
    /// Input height and width (default: the data set's).
    #[arg(long)]
    pub input: Option<i64>,
    /// Input channels (default: the data set's).
    #[arg(long)]
    pub channels: Option<i64>,
    /// Initial channel count C (default: the space's).
    #[arg(long)]
    pub width: Option<i64>,
    /// NB201 cells per stage, DARTS cells in total (default: the space's).
    #[arg(long)]
    pub cells: Option<i64>,
}

/// Runs `inspect`; every error is the user's (exit code 2).
pub fn run(a: &InspectArgs) -> Result<Value, SpaceError> {
    let space = crate::space::by_name(&a.space)?.name();
    let mut opts = NetOptions::for_dataset(a.dataset.as_deref().unwrap_or("cifar10"))?;
    opts.classes = a.classes.unwrap_or(opts.classes);
    opts.input_size = a.input.unwrap_or(opts.input_size);
    opts.input_channels = a.channels.unwrap_or(opts.input_channels);
    opts.width = a.width;
    opts.cells = a.cells;
    let missing = |flag: &'static str, space: &str| SpaceError::Option {
        option: flag,
        message: format!("`--{flag}` is required for --space {space}"),
    };
    let mut out = match space {
        SpaceName::Nb201 => {
            if a.genotype.is_some() {
                return Err(SpaceError::Option {
                    option: "genotype",
                    message: "only for --space darts; use --arch for nb201".into(),
                });
            }
            let arch: Nb201Arch = a
                .arch
                .as_deref()
                .ok_or_else(|| missing("arch", "nb201"))?
                .parse()?;
            let b = Nb201Builder::new(arch, &opts)?;
            let (n3, n1) = arch.conv_counts();
            let mut v = summary(&b);
            v["nor_conv_3x3"] = json!(n3);
            v["nor_conv_1x1"] = json!(n1);
            v["canonical"] = json!(arch.canonical_key());
            v
        }
        SpaceName::Darts => {
            if a.arch.is_some() {
                return Err(SpaceError::Option {
                    option: "arch",
                    message: "only for --space nb201; use --genotype for darts".into(),
                });
            }
            let g = Genotype::resolve(
                a.genotype
                    .as_deref()
                    .ok_or_else(|| missing("genotype", "darts"))?,
            )?;
            opts.auxiliary = true;
            let b = match crate::space::darts::DartsBuilder::new(g.clone(), &opts) {
                Ok(b) => b,
                // Sizes whose feature map does not suit the auxiliary head are still inspectable.
                Err(SpaceError::Option {
                    option: "auxiliary",
                    ..
                }) => {
                    opts.auxiliary = false;
                    crate::space::darts::DartsBuilder::new(g.clone(), &opts)?
                }
                Err(e) => return Err(e),
            };
            let mut v = summary(&b);
            v["network"] = json!(match b.kind {
                DartsNetKind::Cifar => "cifar",
                DartsNetKind::ImageNet => "imagenet",
            });
            v["aux_params"] = json!(b.aux_params());
            v["aux_flops"] = json!(b.aux_flops());
            v["genotype_json"] = serde_json::from_str(&g.to_json()).unwrap_or(Value::Null);
            v["follows_darts_rules"] = json!(g.follows_darts_rules());
            v
        }
    };
    out["space"] = json!(space.as_str());
    out["flops_convention"] = json!(crate::space::for_name(space).flops_convention());
    Ok(out)
}

fn summary(b: &dyn NetBuilder) -> Value {
    let (params, flops) = (b.param_count(), b.flops());
    let (c, h, w) = b.input_shape();
    json!({
        "arch": b.arch(),
        "params": params,
        "flops": flops,
        "params_millions": params as f64 / 1e6,
        "flops_millions": flops as f64 / 1e6,
        "classes": b.num_classes(),
        "input": [c, h, w],
        "breakdown": b.breakdown(),
    })
}
