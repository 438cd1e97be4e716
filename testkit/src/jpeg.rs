//! A small baseline JPEG encoder, so tests make the images they decode instead of reading a data
//! set from outside the repository.
//!
//! Baseline sequential DCT, 8-bit, one quantisation table, no chroma subsampling; greyscale (one
//! component), YCbCr (three, from RGB) or Adobe CMYK (four, as some ImageNet files are). Its
//! Huffman tables are its own (JPEG lets the file define them): fixed-length codes, 4 bits for
//! the 12 DC categories and 8 bits for the 162 AC run/size symbols, which keeps the encoder short
//! at the cost of a larger file. Any conforming decoder reads the result.

/// Pixel layout of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Gray,
    Rgb,
    /// Adobe CMYK (stored inverted, as Photoshop writes it, with an APP14 marker).
    Cmyk,
}

impl Layout {
    fn channels(self) -> usize {
        match self {
            Layout::Gray => 1,
            Layout::Rgb => 3,
            Layout::Cmyk => 4,
        }
    }
}

/// Encodes `pixels` (row-major, `width * height * channels` bytes) at `quality` 1..=100.
pub fn encode(pixels: &[u8], width: u16, height: u16, layout: Layout, quality: u8) -> Vec<u8> {
    let (w, h, n) = (width as usize, height as usize, layout.channels());
    assert!(w > 0 && h > 0, "empty image");
    assert_eq!(pixels.len(), w * h * n, "pixel buffer size");
    let planes = to_planes(pixels, w, h, layout);
    let q = quant_table(quality);

    let mut out = vec![0xFF, 0xD8];
    if layout == Layout::Cmyk {
        // APP14 "Adobe", transform 0: the channels are stored as given.
        segment(
            &mut out,
            0xEE,
            &[b'A', b'd', b'o', b'b', b'e', 0, 100, 0, 0, 0, 0, 0],
        );
    }
    let mut dqt = vec![0u8];
    dqt.extend(ZIGZAG.map(|i| q[i] as u8));
    segment(&mut out, 0xDB, &dqt);
    let mut sof = vec![8, (h >> 8) as u8, h as u8, (w >> 8) as u8, w as u8, n as u8];
    for c in 0..n {
        sof.extend([c as u8 + 1, 0x11, 0]);
    }
    segment(&mut out, 0xC0, &sof);
    segment(&mut out, 0xC4, &dht(0x00, 4, 12));
    segment(&mut out, 0xC4, &dht(0x10, 8, AC_SYMBOLS.len()));
    let mut sos = vec![n as u8];
    for c in 0..n {
        sos.extend([c as u8 + 1, 0x00]);
    }
    sos.extend([0, 63, 0]);
    segment(&mut out, 0xDA, &sos);

    let mut bits = BitWriter::default();
    let mut dc_pred = vec![0i32; n];
    for by in (0..h).step_by(8) {
        for bx in (0..w).step_by(8) {
            for (c, plane) in planes.iter().enumerate() {
                let block = quantised_block(plane, w, h, bx, by, &q);
                encode_block(&mut bits, &block, &mut dc_pred[c]);
            }
        }
    }
    out.extend(bits.finish());
    out.extend([0xFF, 0xD9]);
    out
}

/// Level-shifted planes (Y, Cb, Cr for RGB).
fn to_planes(pixels: &[u8], w: usize, h: usize, layout: Layout) -> Vec<Vec<f32>> {
    let n = layout.channels();
    let mut planes = vec![Vec::with_capacity(w * h); n];
    for px in pixels.chunks_exact(n) {
        match layout {
            Layout::Rgb => {
                let (r, g, b) = (px[0] as f32, px[1] as f32, px[2] as f32);
                planes[0].push(0.299 * r + 0.587 * g + 0.114 * b - 128.0);
                planes[1].push(-0.168_736 * r - 0.331_264 * g + 0.5 * b);
                planes[2].push(0.5 * r - 0.418_688 * g - 0.081_312 * b);
            }
            Layout::Gray => planes[0].push(px[0] as f32 - 128.0),
            Layout::Cmyk => {
                for (c, v) in px.iter().enumerate() {
                    planes[c].push((255 - v) as f32 - 128.0);
                }
            }
        }
    }
    planes
}

/// Step sizes that grow with frequency (a ramp, not Annex K's table: tests need no more),
/// scaled by quality as libjpeg scales its tables.
fn quant_table(quality: u8) -> [u16; 64] {
    let quality = quality.clamp(1, 100) as u32;
    let scale = if quality < 50 {
        5000 / quality
    } else {
        200 - 2 * quality
    };
    let mut q = [0u16; 64];
    for (i, v) in q.iter_mut().enumerate() {
        let (u, v_) = (i % 8, i / 8);
        let base = 10 + 6 * (u + v_) as u32;
        *v = ((base * scale + 50) / 100).clamp(1, 255) as u16;
    }
    q
}

/// The 8x8 block at (bx, by), edges replicated, DCT'd and quantised, in natural order.
fn quantised_block(
    plane: &[f32],
    w: usize,
    h: usize,
    bx: usize,
    by: usize,
    q: &[u16; 64],
) -> [i32; 64] {
    let mut s = [0f32; 64];
    for y in 0..8 {
        for x in 0..8 {
            s[y * 8 + x] = plane[(by + y).min(h - 1) * w + (bx + x).min(w - 1)];
        }
    }
    let mut out = [0i32; 64];
    for v in 0..8 {
        for u in 0..8 {
            let mut sum = 0f32;
            for y in 0..8 {
                for x in 0..8 {
                    sum += s[y * 8 + x] * basis(x, u) * basis(y, v);
                }
            }
            let c = |k: usize| {
                if k == 0 {
                    std::f32::consts::FRAC_1_SQRT_2
                } else {
                    1.0
                }
            };
            let coef = 0.25 * c(u) * c(v) * sum;
            out[v * 8 + u] = (coef / q[v * 8 + u] as f32).round() as i32;
        }
    }
    out
}

fn basis(x: usize, u: usize) -> f32 {
    (((2 * x + 1) * u) as f32 * std::f32::consts::PI / 16.0).cos()
}

fn encode_block(bits: &mut BitWriter, block: &[i32; 64], dc_pred: &mut i32) {
    let dc = block[0];
    let (size, value) = magnitude(dc - *dc_pred);
    *dc_pred = dc;
    bits.put(size as u32, 4);
    bits.put(value, size);
    let mut run = 0u8;
    for &i in &ZIGZAG[1..] {
        let v = block[i];
        if v == 0 {
            run += 1;
            continue;
        }
        while run >= 16 {
            bits.put(ac_code(0xF0), 8);
            run -= 16;
        }
        let (size, value) = magnitude(v);
        bits.put(ac_code((run << 4) | size), 8);
        bits.put(value, size);
        run = 0;
    }
    if run > 0 {
        bits.put(ac_code(0x00), 8);
    }
}

/// A coefficient's category and its bits (negative values as one's complement).
fn magnitude(v: i32) -> (u8, u32) {
    let size = (32 - v.unsigned_abs().leading_zeros()) as u8;
    let value = if v < 0 { (v - 1) as u32 } else { v as u32 };
    (size, value & ((1u32 << size) - 1))
}

/// Every AC symbol: end of block, 16 zeros, then run/size for runs 0..15 and sizes 1..10.
const AC_SYMBOLS: [u8; 162] = {
    let mut s = [0u8; 162];
    s[1] = 0xF0;
    let mut i = 2;
    let mut run = 0;
    while run < 16 {
        let mut size = 1;
        while size <= 10 {
            s[i] = (run << 4) | size;
            i += 1;
            size += 1;
        }
        run += 1;
    }
    s
};

/// The canonical code of an AC symbol: its position in [`AC_SYMBOLS`] (all codes 8 bits long).
fn ac_code(symbol: u8) -> u32 {
    AC_SYMBOLS
        .iter()
        .position(|&s| s == symbol)
        .expect("AC symbol") as u32
}

/// A DHT segment body: `count` symbols, all with codes of `length` bits.
fn dht(class_id: u8, length: usize, count: usize) -> Vec<u8> {
    let mut body = vec![class_id];
    let mut counts = [0u8; 16];
    counts[length - 1] = count as u8;
    body.extend(counts);
    if class_id == 0x00 {
        body.extend(0..count as u8);
    } else {
        body.extend(AC_SYMBOLS);
    }
    body
}

fn segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
    let len = body.len() + 2;
    out.extend([0xFF, marker, (len >> 8) as u8, len as u8]);
    out.extend(body);
}

/// Zig-zag position k -> natural (row-major) index.
const ZIGZAG: [usize; 64] = {
    let mut z = [0usize; 64];
    let (mut x, mut y, mut k) = (0usize, 0usize, 0usize);
    while k < 64 {
        z[k] = y * 8 + x;
        k += 1;
        if (x + y) % 2 == 0 {
            // Moving up and to the right.
            if x == 7 {
                y += 1;
            } else if y == 0 {
                x += 1;
            } else {
                x += 1;
                y -= 1;
            }
        } else if y == 7 {
            x += 1;
        } else if x == 0 {
            y += 1;
        } else {
            x -= 1;
            y += 1;
        }
    }
    z
};

/// MSB-first bits with 0xFF byte stuffing; pads the last byte with ones.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    n: u8,
}

impl BitWriter {
    fn put(&mut self, value: u32, len: u8) {
        for i in (0..len).rev() {
            self.acc = (self.acc << 1) | ((value >> i) & 1);
            self.n += 1;
            if self.n == 8 {
                self.push(self.acc as u8);
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    fn push(&mut self, byte: u8) {
        self.out.push(byte);
        if byte == 0xFF {
            self.out.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let pad = 8 - self.n;
            self.put((1 << pad) - 1, pad);
        }
        self.out
    }
}

/// A test image: smooth gradients and a class-dependent stripe pattern, so images of different
/// `class`es differ and images of one class vary with `seed`.
pub fn pattern(width: u16, height: u16, layout: Layout, class: u32, seed: u32) -> Vec<u8> {
    let n = layout.channels();
    let mut px = Vec::with_capacity(width as usize * height as usize * n);
    for y in 0..height as u32 {
        for x in 0..width as u32 {
            let stripe = if ((x + y * class) / (2 + class % 5)).is_multiple_of(2) {
                60
            } else {
                0
            };
            for c in 0..n as u32 {
                let v = (x * 255 / width as u32
                    + y * 97 / height as u32
                    + c * 40
                    + class * 23
                    + seed * 13
                    + stripe)
                    % 256;
                px.push(v as u8);
            }
        }
    }
    px
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_is_a_permutation_that_starts_as_the_standard_one() {
        let mut seen = [false; 64];
        for &i in &ZIGZAG {
            seen[i] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(&ZIGZAG[..10], &[0, 1, 8, 16, 9, 2, 3, 10, 17, 24]);
        assert_eq!(ZIGZAG[63], 63);
    }

    #[test]
    fn magnitude_categories_follow_the_standard() {
        assert_eq!(magnitude(0), (0, 0));
        assert_eq!(magnitude(1), (1, 1));
        assert_eq!(magnitude(-1), (1, 0));
        assert_eq!(magnitude(-3), (2, 0));
        assert_eq!(magnitude(5), (3, 5));
        assert_eq!(magnitude(-1023), (10, 0));
    }

    #[test]
    fn files_are_framed_and_stuffed() {
        let img = pattern(20, 13, Layout::Rgb, 3, 1);
        let jpg = encode(&img, 20, 13, Layout::Rgb, 90);
        assert_eq!(&jpg[..2], &[0xFF, 0xD8]);
        assert_eq!(&jpg[jpg.len() - 2..], &[0xFF, 0xD9]);
    }
}
