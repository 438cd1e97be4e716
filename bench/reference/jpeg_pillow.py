"""JPEGs and the pixels Pillow (libjpeg-turbo) decodes from them: the fixture of
runner/tests/jpeg_pillow.rs, which holds the runner's decoder to libjpeg-turbo's output.

    python jpeg_pillow.py --out runner/tests/fixtures/jpeg_pillow

torchvision and our PyTorch reference decode through Pillow, so a network trained by the runner
sees what it would have seen there only if the decoders agree. They can differ most where chroma
is subsampled (4:2:0, as in CIFAR-10's and most of ImageNet's JPEGs) and colour changes sharply:
libjpeg-turbo's "fancy" upsampling interpolates the chroma planes, a plain one repeats them. The
images are synthetic (no data set is copied): saturated colour blocks and one-pixel stripes, a
smooth gradient with noise, partial MCUs, every subsampling Pillow writes, progressive,
greyscale and Adobe CMYK. Writes `<name>.jpg`, `<name>.rgb` (height x width x 3 bytes, what
`Image.convert("RGB")` gives) and `manifest.json` (names, sizes, how each was encoded, versions).
"""

from __future__ import annotations

import argparse
import io
import json
import os

import numpy as np
import PIL
import PIL.features
from PIL import Image


def blocks(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Saturated colour rectangles with sharp edges at odd positions."""
    img = np.zeros((h, w, 3), np.uint8)
    palette = np.array([[255, 0, 0], [0, 0, 255], [0, 255, 0], [255, 255, 0], [255, 0, 255],
                        [0, 255, 255], [20, 20, 20], [240, 240, 240]], np.uint8)
    for _ in range(24):
        top, left = rng.integers(0, h), rng.integers(0, w)
        bh, bw = rng.integers(1, h // 2 + 2), rng.integers(1, w // 2 + 2)
        img[top:top + bh, left:left + bw] = palette[rng.integers(0, len(palette))]
    return img


def stripes(h: int, w: int) -> np.ndarray:
    """One- to three-pixel red/blue stripes across, green/magenta down."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.where((x // (1 + x % 3)) % 2 == 0, 255, 0)
    img[..., 2] = 255 - img[..., 0]
    img[..., 1] = np.where((y // 2) % 2 == 0, 200, 30)
    return img


def smooth(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A colour gradient with mild noise: the natural-image case."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([255 * x / w, 255 * y / h, 128 + 100 * np.sin((x + y) / 5)], axis=-1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def cases(rng: np.random.Generator):
    """(name, PIL image, save options, how it was made)."""
    rgb = lambda a: Image.fromarray(a, "RGB")  # noqa: E731
    yield "blocks_420", rgb(blocks(rng, 32, 32)), {"quality": 90, "subsampling": 2}, "4:2:0 q90"
    yield "stripes_420", rgb(stripes(32, 32)), {"quality": 90, "subsampling": 2}, "4:2:0 q90"
    yield "smooth_420", rgb(smooth(rng, 32, 32)), {"quality": 75, "subsampling": 2}, "4:2:0 q75"
    yield ("partial_mcu_420", rgb(blocks(rng, 23, 37)), {"quality": 85, "subsampling": 2},
           "4:2:0 q85, 37x23: partial MCUs on both axes")
    yield "blocks_422", rgb(blocks(rng, 24, 40)), {"quality": 90, "subsampling": 1}, "4:2:2 q90"
    yield "blocks_444", rgb(blocks(rng, 16, 16)), {"quality": 90, "subsampling": 0}, "4:4:4 q90"
    yield ("progressive_420", rgb(blocks(rng, 48, 40)),
           {"quality": 80, "subsampling": 2, "progressive": True}, "4:2:0 q80 progressive")
    grey = Image.fromarray(smooth(rng, 20, 28)[..., 0], "L")
    yield "grey", grey, {"quality": 85}, "greyscale q85"
    cmyk = rgb(blocks(rng, 24, 24)).convert("CMYK")
    yield "cmyk", cmyk, {"quality": 90}, "Adobe CMYK q90 (Pillow writes it inverted)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(20261207)
    entries = []
    for name, img, options, made in cases(rng):
        buf = io.BytesIO()
        img.save(buf, "JPEG", **options)
        data = buf.getvalue()
        with Image.open(io.BytesIO(data)) as decoded:
            pixels = np.asarray(decoded.convert("RGB"))
        with open(os.path.join(a.out, f"{name}.jpg"), "wb") as f:
            f.write(data)
        with open(os.path.join(a.out, f"{name}.rgb"), "wb") as f:
            f.write(pixels.tobytes())
        entries.append({"name": name, "height": pixels.shape[0], "width": pixels.shape[1],
                        "encoded": made})
    manifest = {
        "made_by": "bench/reference/jpeg_pillow.py",
        "pillow": PIL.__version__,
        "libjpeg_turbo": PIL.features.version("libjpeg_turbo"),
        "images": entries,
    }
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
