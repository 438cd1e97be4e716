//! Decoded images (interleaved `H x W x C` bytes) and the geometric operations staging needs:
//! JPEG decoding (jpeg-decoder), short-side resize (fast_image_resize, bilinear) and crops.
use super::DataError;
use fast_image_resize::{
    images::Image as FirImage, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
};
use jpeg_decoder::{Decoder, ImageInfo, PixelFormat};

/// Largest side accepted from a JPEG header: larger images are treated as corrupt.
const MAX_SIDE: usize = 16_384;
/// More pixels per byte than entropy coding can reach (about 256 at 2 bits per 8x8 block):
/// the header lies or the file is cut.
const MAX_PIXELS_PER_BYTE: usize = 1024;

/// An 8-bit image, rows of interleaved channels (`HWC`), 1 or 3 channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub channels: u8,
    pub height: u32,
    pub width: u32,
    pub data: Vec<u8>,
}

impl Image {
    pub fn new(channels: u8, height: u32, width: u32, data: Vec<u8>) -> Result<Self, DataError> {
        let want = channels as usize * height as usize * width as usize;
        if data.len() != want || !(channels == 1 || channels == 3) {
            return Err(DataError::Invalid(format!(
                "image of {channels} channels {height}x{width} needs {want} bytes, got {}",
                data.len()
            )));
        }
        Ok(Image {
            channels,
            height,
            width,
            data,
        })
    }

    /// Same pixels as `C x H x W` planes (the tensor layout).
    pub fn to_chw(&self) -> Vec<u8> {
        let (c, hw) = (
            self.channels as usize,
            self.height as usize * self.width as usize,
        );
        let mut out = vec![0u8; self.data.len()];
        for (i, px) in self.data.chunks_exact(c).enumerate() {
            for (k, v) in px.iter().enumerate() {
                out[k * hw + i] = *v;
            }
        }
        out
    }

    /// The `h x w` window at (`top`, `left`), which must lie inside the image.
    pub fn crop(&self, top: u32, left: u32, h: u32, w: u32) -> Image {
        debug_assert!(top + h <= self.height && left + w <= self.width);
        let c = self.channels as usize;
        let mut data = Vec::with_capacity(c * h as usize * w as usize);
        for y in top..top + h {
            let start = (y as usize * self.width as usize + left as usize) * c;
            data.extend_from_slice(&self.data[start..start + w as usize * c]);
        }
        Image {
            channels: self.channels,
            height: h,
            width: w,
            data,
        }
    }

    /// Central `size x size` window (or the whole side where the image is smaller).
    pub fn center_crop(&self, size: u32) -> Image {
        let (h, w) = (size.min(self.height), size.min(self.width));
        self.crop((self.height - h) / 2, (self.width - w) / 2, h, w)
    }

    /// Resized so that the shorter side is `short` (aspect kept, bilinear); unchanged if it is.
    pub fn resize_short_side(&self, short: u32) -> Result<Image, DataError> {
        let (h, w) = (self.height, self.width);
        if h.min(w) == short {
            return Ok(self.clone());
        }
        let scale = short as f64 / h.min(w) as f64;
        let (nh, nw) = if h <= w {
            (short, ((w as f64 * scale).round() as u32).max(1))
        } else {
            (((h as f64 * scale).round() as u32).max(1), short)
        };
        self.resize_region(0.0, 0.0, h as f64, w as f64, nh, nw)
    }

    /// The region (`top`, `left`, `h`, `w`) in source pixels resized to `out_h x out_w`.
    pub fn resize_region(
        &self,
        top: f64,
        left: f64,
        h: f64,
        w: f64,
        out_h: u32,
        out_w: u32,
    ) -> Result<Image, DataError> {
        let pixel = if self.channels == 3 {
            PixelType::U8x3
        } else {
            PixelType::U8
        };
        let src = FirImage::from_vec_u8(self.width, self.height, self.data.clone(), pixel)
            .map_err(|e| DataError::Invalid(format!("resize source: {e}")))?;
        let mut dst = FirImage::new(out_w, out_h, pixel);
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
            .crop(left, top, w, h);
        Resizer::new()
            .resize(&src, &mut dst, &options)
            .map_err(|e| DataError::Invalid(format!("resize to {out_h}x{out_w}: {e}")))?;
        Ok(Image {
            channels: self.channels,
            height: out_h,
            width: out_w,
            data: dst.into_vec(),
        })
    }
}

/// Decodes a JPEG into RGB (`channels == 3`) or grayscale (`channels == 1`); `key` names it in
/// errors. CMYK and grayscale sources are converted to the requested channel count as Pillow
/// converts them, so that staged pixels are the ones torchvision would train on.
pub fn decode_jpeg(bytes: &[u8], channels: u8, key: &str) -> Result<Image, DataError> {
    let corrupt = |detail: String| DataError::Decode {
        key: key.to_string(),
        detail,
    };
    // A decoder may panic on malformed data (zune-jpeg 0.4 indexed out of bounds on a damaged
    // scan, found by runner/tests/parser_props.rs; the regression is kept): a corrupt file is
    // an error of that file, never the end of the stage.
    let (info, data) = std::panic::catch_unwind(|| decode_pixels(bytes))
        .map_err(|panic| {
            corrupt(format!(
                "the decoder failed on malformed data: {}",
                crate::panics::panic_message(&*panic)
            ))
        })?
        .map_err(corrupt)?;
    let data = match (info.pixel_format, channels) {
        (PixelFormat::RGB24, 3) | (PixelFormat::L8, 1) => data,
        (PixelFormat::L8, _) => data.iter().flat_map(|&v| [v, v, v]).collect(),
        (PixelFormat::RGB24, _) => data.chunks_exact(3).map(luma).collect(),
        (PixelFormat::CMYK32, 3) => data.chunks_exact(4).flat_map(cmyk_to_rgb).collect(),
        (PixelFormat::CMYK32, _) => data
            .chunks_exact(4)
            .map(|p| luma(&cmyk_to_rgb(p)))
            .collect(),
        (PixelFormat::L16, _) => {
            return Err(corrupt(
                "lossless JPEG with more than 8 bits per sample is not supported".into(),
            ))
        }
    };
    Image::new(channels, info.height as u32, info.width as u32, data)
        .map_err(|e| corrupt(e.to_string()))
}

/// The header and the decoded samples (jpeg-decoder: libjpeg's fancy chroma upsampling and
/// colour conversion, within 3 of 255 of libjpeg-turbo on every subsampling,
/// runner/tests/jpeg_pillow.rs), or why not.
fn decode_pixels(bytes: &[u8]) -> Result<(ImageInfo, Vec<u8>), String> {
    let mut decoder = Decoder::new(bytes);
    decoder.read_info().map_err(|e| e.to_string())?;
    let info = decoder.info().ok_or("no image header")?;
    let (w, h) = (info.width as usize, info.height as usize);
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(format!("{w}x{h} pixels: a side over {MAX_SIDE}"));
    }
    // The decoder allocates its output from the header's size: a few corrupt header bytes must
    // not claim gigabytes. Even a flat image costs about 2 bits per 8x8 block and component.
    if w.saturating_mul(h) > bytes.len().saturating_mul(MAX_PIXELS_PER_BYTE) {
        return Err(format!(
            "header declares {w}x{h} pixels but the file has only {} bytes",
            bytes.len()
        ));
    }
    let data = decoder.decode().map_err(|e| e.to_string())?;
    Ok((info, data))
}

/// ITU-R 601-2 luma, as Pillow's `convert("L")`.
fn luma(p: &[u8]) -> u8 {
    ((299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32 + 500) / 1000) as u8
}

/// Pillow's CMYK to RGB (`nk - c * nk / 255` with its rounding, `nk = 255 - k`); the decoder
/// has already undone Adobe's inversion.
fn cmyk_to_rgb(p: &[u8]) -> [u8; 3] {
    let nk = 255 - p[3] as u32;
    let muldiv255 = |a: u32| {
        let t = a * nk + 128;
        (t + (t >> 8)) >> 8
    };
    [0, 1, 2].map(|i| (nk - muldiv255(p[i] as u32)) as u8)
}

/// True for names a JPEG reader should take (`.jpg`, `.jpeg`, any case).
pub fn is_jpeg_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".jpg") || lower.ends_with(".jpeg")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(h: u32, w: u32) -> Image {
        let data = (0..h * w * 3).map(|i| (i % 251) as u8).collect();
        Image::new(3, h, w, data).unwrap()
    }

    #[test]
    fn crop_and_chw_layout() {
        let img = ramp(4, 5);
        let c = img.crop(1, 2, 2, 3);
        assert_eq!((c.height, c.width), (2, 3));
        assert_eq!(&c.data[0..3], &img.data[(5 + 2) * 3..(5 + 2) * 3 + 3]);
        let chw = img.to_chw();
        assert_eq!(chw[0], img.data[0]);
        assert_eq!(chw[20], img.data[1]);
        assert_eq!(chw[41], img.data[5]);
    }

    #[test]
    fn short_side_resize_keeps_aspect() {
        let img = ramp(40, 60);
        let r = img.resize_short_side(20).unwrap();
        assert_eq!((r.height, r.width), (20, 30));
        let t = ramp(60, 40).resize_short_side(20).unwrap();
        assert_eq!((t.height, t.width), (30, 20));
        assert_eq!(img.center_crop(32).width, 32);
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let err = decode_jpeg(&[0xff, 0xd8, 0x00, 0x01], 3, "k/x.jpg").unwrap_err();
        assert!(err.to_string().contains("k/x.jpg"), "{err}");
    }
}
