//! Training augmentation and normalisation of single images, each driven by its own seeded RNG
//! so that a batch is the same whichever thread builds it.
//!
//! * `PadCrop`: zero-pad by `pad` then a random `side x side` window (CIFAR convention).
//! * `RandomResizedCrop`: a random window of 8-100% of the area and aspect 3/4-4/3, resized to
//!   `side` (the Inception / torchvision convention, ImageNet).
//! * horizontal flip with probability 1/2, light colour jitter (brightness, contrast,
//!   saturation factors in `[1 - j, 1 + j]`), and Cutout (a `n x n` square zeroed after
//!   normalisation, DARTS).
//! * `Center`: evaluation; resize the short side to `side` if needed and centre crop.
use super::image::Image;
use super::{DataError, Normalization};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CropMode {
    Center,
    PadCrop { pad: u32 },
    RandomResizedCrop { min_scale: f64, max_scale: f64 },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// Output square side.
    pub side: u32,
    pub crop: CropMode,
    pub flip: bool,
    /// Colour jitter strength (0 = off).
    pub jitter: f32,
    /// Cutout square side (0 = off).
    pub cutout: u32,
}

impl Augment {
    /// Evaluation: centre only.
    pub fn eval(side: u32) -> Self {
        Augment {
            side,
            crop: CropMode::Center,
            flip: false,
            jitter: 0.0,
            cutout: 0,
        }
    }
    /// CIFAR-style training: pad 4, random crop, flip, optional cutout.
    pub fn cifar(side: u32, cutout: u32) -> Self {
        Augment {
            side,
            crop: CropMode::PadCrop { pad: 4 },
            flip: true,
            jitter: 0.0,
            cutout,
        }
    }
    /// ImageNet-style training: RandomResizedCrop, flip, jitter 0.4 (as in DARTS' ImageNet code).
    pub fn imagenet(side: u32) -> Self {
        Augment {
            side,
            crop: CropMode::RandomResizedCrop {
                min_scale: 0.08,
                max_scale: 1.0,
            },
            flip: true,
            jitter: 0.4,
            cutout: 0,
        }
    }

    /// Augments `image` and returns its normalised `C x H x W` floats.
    pub fn apply(
        &self,
        image: &Image,
        norm: &Normalization,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<f32>, DataError> {
        let s = self.side;
        let mut img = match &self.crop {
            CropMode::Center => {
                if image.height.min(image.width) == s {
                    image.center_crop(s)
                } else {
                    image.resize_short_side(s)?.center_crop(s)
                }
            }
            CropMode::PadCrop { pad } => {
                let base = if image.height.min(image.width) == s {
                    image.clone()
                } else {
                    image.resize_short_side(s)?
                };
                pad_crop(&base, *pad, s, rng)
            }
            CropMode::RandomResizedCrop {
                min_scale,
                max_scale,
            } => {
                let (top, left, h, w) = rrc_window(image, *min_scale, *max_scale, rng);
                image.resize_region(top, left, h, w, s, s)?
            }
        };
        if self.flip && rng.random_bool(0.5) {
            flip(&mut img);
        }
        let c = img.channels as usize;
        let hw = (img.height * img.width) as usize;
        let mut px: Vec<f32> = img.data.iter().map(|&v| v as f32 / 255.0).collect();
        if self.jitter > 0.0 {
            jitter(&mut px, c, self.jitter, rng);
        }
        let mut out = vec![0f32; px.len()];
        for k in 0..c {
            let (m, sd) = (
                norm.mean[k.min(norm.mean.len() - 1)] as f32,
                norm.std[k.min(norm.std.len() - 1)] as f32,
            );
            for i in 0..hw {
                out[k * hw + i] = (px[i * c + k] - m) / sd;
            }
        }
        if self.cutout > 0 {
            let (h, w) = (img.height as i64, img.width as i64);
            let (cy, cx) = (rng.random_range(0..h), rng.random_range(0..w));
            let half = self.cutout as i64 / 2;
            for y in (cy - half).max(0)..(cy + half).min(h) {
                for x in (cx - half).max(0)..(cx + half).min(w) {
                    for k in 0..c {
                        out[k * hw + (y * w + x) as usize] = 0.0;
                    }
                }
            }
        }
        Ok(out)
    }
}

fn pad_crop(image: &Image, pad: u32, side: u32, rng: &mut ChaCha8Rng) -> Image {
    let c = image.channels as usize;
    let (ph, pw) = (image.height + 2 * pad, image.width + 2 * pad);
    let top = rng.random_range(0..=ph - side.min(ph));
    let left = rng.random_range(0..=pw - side.min(pw));
    let mut data = vec![0u8; side as usize * side as usize * c];
    for y in 0..side {
        let sy = (top + y) as i64 - pad as i64;
        if sy < 0 || sy >= image.height as i64 {
            continue;
        }
        for x in 0..side {
            let sx = (left + x) as i64 - pad as i64;
            if sx < 0 || sx >= image.width as i64 {
                continue;
            }
            let src = (sy as usize * image.width as usize + sx as usize) * c;
            let dst = (y as usize * side as usize + x as usize) * c;
            data[dst..dst + c].copy_from_slice(&image.data[src..src + c]);
        }
    }
    Image {
        channels: image.channels,
        height: side,
        width: side,
        data,
    }
}

/// torchvision's RandomResizedCrop window: ten tries at a random area and log-uniform aspect,
/// then the centre crop at the nearest allowed aspect.
fn rrc_window(
    image: &Image,
    min_scale: f64,
    max_scale: f64,
    rng: &mut ChaCha8Rng,
) -> (f64, f64, f64, f64) {
    let (h, w) = (image.height as f64, image.width as f64);
    let area = h * w;
    let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.random_range(min_scale..=max_scale);
        let ratio = rng.random_range(lo..=hi).exp();
        let cw = (target * ratio).sqrt().round();
        let ch = (target / ratio).sqrt().round();
        if cw >= 1.0 && ch >= 1.0 && cw <= w && ch <= h {
            let top = rng.random_range(0..=(h - ch) as u32) as f64;
            let left = rng.random_range(0..=(w - cw) as u32) as f64;
            return (top, left, ch, cw);
        }
    }
    let ratio = w / h;
    let (cw, ch) = if ratio < 3.0 / 4.0 {
        (w, (w / (3.0 / 4.0)).round())
    } else if ratio > 4.0 / 3.0 {
        ((h * 4.0 / 3.0).round(), h)
    } else {
        (w, h)
    };
    (((h - ch) / 2.0).floor(), ((w - cw) / 2.0).floor(), ch, cw)
}

fn flip(img: &mut Image) {
    let c = img.channels as usize;
    let w = img.width as usize;
    for row in img.data.chunks_exact_mut(w * c) {
        for x in 0..w / 2 {
            for k in 0..c {
                row.swap(x * c + k, (w - 1 - x) * c + k);
            }
        }
    }
}

/// Brightness, contrast and saturation jitter on `[0, 1]` interleaved pixels.
fn jitter(px: &mut [f32], c: usize, strength: f32, rng: &mut ChaCha8Rng) {
    let mut factor = || rng.random_range(1.0 - strength..=1.0 + strength);
    let (b, ct, sat) = (factor(), factor(), factor());
    let gray = |p: &[f32]| {
        if c == 3 {
            0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
        } else {
            p[0]
        }
    };
    for v in px.iter_mut() {
        *v = (*v * b).clamp(0.0, 1.0);
    }
    let mean = px.chunks_exact(c).map(gray).sum::<f32>() / (px.len() / c).max(1) as f32;
    for v in px.iter_mut() {
        *v = ((*v - mean) * ct + mean).clamp(0.0, 1.0);
    }
    if c == 3 {
        for p in px.chunks_exact_mut(3) {
            let g = gray(p);
            for v in p.iter_mut() {
                *v = ((*v - g) * sat + g).clamp(0.0, 1.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn img() -> Image {
        Image::new(
            3,
            32,
            32,
            (0..32 * 32 * 3).map(|i| (i % 256) as u8).collect(),
        )
        .unwrap()
    }

    #[test]
    fn same_seed_same_output_and_shapes() {
        let norm = Normalization::cifar10();
        for aug in [
            Augment::cifar(32, 16),
            Augment::imagenet(24),
            Augment::eval(32),
        ] {
            let a = aug
                .apply(&img(), &norm, &mut ChaCha8Rng::seed_from_u64(3))
                .unwrap();
            let b = aug
                .apply(&img(), &norm, &mut ChaCha8Rng::seed_from_u64(3))
                .unwrap();
            assert_eq!(a, b);
            assert_eq!(a.len(), 3 * aug.side as usize * aug.side as usize);
        }
        let a = Augment::cifar(32, 0)
            .apply(&img(), &norm, &mut ChaCha8Rng::seed_from_u64(1))
            .unwrap();
        let differs = (2..20).any(|s| {
            Augment::cifar(32, 0)
                .apply(&img(), &norm, &mut ChaCha8Rng::seed_from_u64(s))
                .unwrap()
                != a
        });
        assert!(differs, "random crops never changed the image");
    }

    #[test]
    fn flip_mirrors_rows_and_eval_normalises() {
        let mut i = Image::new(1, 1, 3, vec![1, 2, 3]).unwrap();
        flip(&mut i);
        assert_eq!(i.data, vec![3, 2, 1]);
        let norm = Normalization {
            mean: vec![0.5],
            std: vec![0.5],
        };
        let one = Image::new(1, 2, 2, vec![255, 0, 255, 0]).unwrap();
        let out = Augment::eval(2)
            .apply(&one, &norm, &mut ChaCha8Rng::seed_from_u64(0))
            .unwrap();
        assert_eq!(out, vec![1.0, -1.0, 1.0, -1.0]);
    }
}
