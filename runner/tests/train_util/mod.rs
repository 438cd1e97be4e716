//! Helpers shared by the data and training tests: a small conv net implementing the `Net` /
//! `NetBuilder` interface (with drop-path and an auxiliary head, so the trainer's use of both
//! is exercised), fixtures cut from the real data sets, and paths.
#![allow(dead_code)]
use nas_runner::nn::{Forward, Net, NetBuilder};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tch::{nn, nn::ModuleT, Tensor};

/// The CIFAR-10 JPEG folder of `../shared/data`, or `None` (the test is skipped, see
/// [`nas_runner::testkit::shared_data`]).
pub fn cifar_dir(test: &str) -> Option<PathBuf> {
    nas_runner::testkit::shared_data(env!("CARGO_MANIFEST_DIR"), "cifar10", test)
}

/// Fashion-MNIST as Debian's `dataset-fashion-mnist` installs it.
pub fn fashion_dir() -> PathBuf {
    let p = PathBuf::from("/usr/share/datasets/fashion-mnist");
    assert!(
        p.is_dir(),
        "{} is missing: install the dataset-fashion-mnist package",
        p.display()
    );
    p
}

pub struct TinyBuilder {
    pub channels: i64,
    pub side: i64,
    pub classes: i64,
    pub aux: bool,
}

struct TinyNet {
    c1: nn::Conv2D,
    b1: nn::BatchNorm,
    c2: nn::Conv2D,
    b2: nn::BatchNorm,
    fc: nn::Linear,
    aux: Option<nn::Linear>,
}

impl Net for TinyNet {
    fn forward(&self, x: &Tensor, f: &mut Forward) -> Tensor {
        let h = self.b1.forward_t(&x.apply(&self.c1), f.train).relu();
        let mut h2 = self.b2.forward_t(&h.apply(&self.c2), f.train).relu();
        if f.train && f.drop_path_prob > 0.0 {
            let keep = 1.0 - f.drop_path_prob;
            let mask = Tensor::empty([h2.size()[0], 1, 1, 1], (tch::Kind::Float, h2.device()))
                .bernoulli_float_(keep);
            h2 = h2 / keep * mask;
        }
        if f.train {
            if let Some(aux) = &self.aux {
                f.aux_logits = Some(h.adaptive_avg_pool2d([1, 1]).flatten(1, -1).apply(aux));
            }
        }
        h2.adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .apply(&self.fc)
    }
    fn classifier_weight(&self) -> Tensor {
        self.fc.ws.shallow_clone()
    }
}

impl NetBuilder for TinyBuilder {
    fn arch(&self) -> String {
        format!(
            "tiny-{}x{}-{}{}",
            self.channels,
            self.side,
            self.classes,
            if self.aux { "-aux" } else { "" }
        )
    }
    fn build(&self, vs: &nn::Path) -> Box<dyn Net> {
        let conv = |s| nn::ConvConfig {
            padding: 1,
            stride: s,
            ..Default::default()
        };
        Box::new(TinyNet {
            c1: nn::conv2d(vs / "c1", self.channels, 16, 3, conv(1)),
            b1: nn::batch_norm2d(vs / "b1", 16, Default::default()),
            c2: nn::conv2d(vs / "c2", 16, 32, 3, conv(2)),
            b2: nn::batch_norm2d(vs / "b2", 32, Default::default()),
            fc: nn::linear(vs / "fc", 32, self.classes, Default::default()),
            aux: self
                .aux
                .then(|| nn::linear(vs / "aux", 16, self.classes, Default::default())),
        })
    }
    fn param_count(&self) -> i64 {
        0
    }
    fn flops(&self) -> i64 {
        0
    }
    fn has_learnable_ops(&self) -> bool {
        true
    }
    fn num_classes(&self) -> i64 {
        self.classes
    }
    fn input_shape(&self) -> (i64, i64, i64) {
        (self.channels, self.side, self.side)
    }
}

/// `per_class` generated 32x32 RGB JPEGs of each CIFAR-10 class, as `(class, file name, bytes)`
/// in the order and with the names of the CIFAR-10 JPEG folder (`airplane/0000.jpg`, ...).
pub fn cifar_jpegs(per_class: usize) -> Vec<(String, String, Vec<u8>)> {
    use nas_runner::testkit::jpeg::{encode, pattern, Layout};
    let mut out = Vec::with_capacity(per_class * 10);
    for (c, class) in nas_runner::data::CIFAR10_CLASSES.iter().enumerate() {
        for i in 0..per_class {
            let px = pattern(32, 32, Layout::Rgb, c as u32, i as u32);
            let bytes = encode(&px, 32, 32, Layout::Rgb, 90);
            out.push((class.to_string(), format!("{i:04}.jpg"), bytes));
        }
    }
    out
}

/// Writes an ImageNet-style `<root>/<split>/<class>/<file>` tree.
pub fn write_folder(root: &Path, split: &str, files: &[(String, String, Vec<u8>)]) {
    for (class, name, bytes) in files {
        let dir = root.join(split).join(class);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Appends a file entry to a tar builder.
pub fn tar_file<W: Write>(b: &mut tar::Builder<W>, path: &str, bytes: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, bytes).unwrap();
}

/// Appends a folder entry to a tar builder.
pub fn tar_dir<W: Write>(b: &mut tar::Builder<W>, path: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Directory);
    b.append_data(&mut h, path, &[][..]).unwrap();
}

/// Writes a gzipped tar of `<prefix><class>/<file>` entries with folder entries (like
/// `tar czf` of a tree), sorted.
pub fn write_tar_gz(path: &Path, prefix: &str, files: &[(String, String, Vec<u8>)]) {
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut b = tar::Builder::new(gz);
    let mut last = String::new();
    for (class, name, bytes) in files {
        if *class != last {
            tar_dir(&mut b, &format!("{prefix}{class}/"));
            last = class.clone();
        }
        tar_file(&mut b, &format!("{prefix}{class}/{name}"), bytes);
    }
    b.into_inner().unwrap().finish().unwrap();
}

/// Writes a plain IDX pair (`{stem}-images-idx3-ubyte`, `{stem}-labels-idx1-ubyte`) holding the
/// first `n` images of the real Fashion-MNIST split `stem` (`train` or `t10k`).
pub fn fashion_subset(dir: &Path, stem: &str, n: usize) {
    let read = |name: &str| {
        let mut out = Vec::new();
        let f = std::fs::File::open(fashion_dir().join(name)).unwrap();
        flate2::read::GzDecoder::new(f)
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let images = read(&format!("{stem}-images-idx3-ubyte.gz"));
    let labels = read(&format!("{stem}-labels-idx1-ubyte.gz"));
    let mut img = images[..16].to_vec();
    img[4..8].copy_from_slice(&(n as u32).to_be_bytes());
    img.extend_from_slice(&images[16..16 + n * 784]);
    let mut lab = labels[..8].to_vec();
    lab[4..8].copy_from_slice(&(n as u32).to_be_bytes());
    lab.extend_from_slice(&labels[8..8 + n]);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{stem}-images-idx3-ubyte")), img).unwrap();
    std::fs::write(dir.join(format!("{stem}-labels-idx1-ubyte")), lab).unwrap();
}
