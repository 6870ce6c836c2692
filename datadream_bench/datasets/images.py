"""Image loading that never lies: EXIF orientation applied, every mode converted explicitly to 3-channel RGB.

A file that is not a whole image is an error naming the path: truncated data, a non-image with an image name, an
unknown extension, or a header that promises more pixels than MAX_PIXELS (refused before any pixel is allocated).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
# 8192 x 8192: well above any image of the ten datasets (SUN397's largest are about 20 Mpx), far below a bomb.
MAX_PIXELS = 1 << 26


class BadImageError(ValueError):
    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def check_extension(path: str | Path) -> None:
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise BadImageError(path, f"unknown image extension {suffix or '(none)'!r}; "
                                  f"expected one of {', '.join(sorted(IMAGE_EXTENSIONS))}")


def load_rgb(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode fully and return an RGB image; a file that is not a whole, sane image raises BadImageError."""
    check_extension(path)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone switched Pillow to pad truncated files with grey; a broken file would then decode "fine".
        raise BadImageError(path, "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set in this process; refusing to decode "
                                  "because truncated files would be padded silently")
    try:
        with Image.open(path) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise BadImageError(path, f"header claims {w}x{h} = {w * h} pixels, over the limit of {max_pixels} "
                                          "(a decompression bomb or a mislabelled file); not decoded")
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb(img)
    except BadImageError:
        raise
    except Image.DecompressionBombError as e:  # Pillow's own header check, past twice its MAX_IMAGE_PIXELS
        raise BadImageError(path, f"decompression bomb refused from its header, not decoded: {e}") from None
    except FileNotFoundError:
        raise BadImageError(path, "file not found") from None
    except (OSError, ValueError, SyntaxError) as e:
        reason = "not an image Pillow can identify" if isinstance(e, Image.UnidentifiedImageError) else str(e)
        raise BadImageError(path, f"{type(e).__name__}: {reason}") from None


def load_array(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """(H, W, 3) uint8, orientation applied."""
    return np.asarray(load_rgb(path, max_pixels))


def to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        # Transparent pixels become white, not whatever colour the encoder left under alpha 0.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        peak = _integer_peak(img, arr)
        gray = (arr * (255.0 / peak)).round().clip(0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        peak = 1.0 if arr.max() <= 1.0 else 255.0
        return Image.fromarray((arr * (255.0 / peak)).round().clip(0, 255).astype(np.uint8)).convert("RGB")
    if mode == "CMYK":
        return img.convert("RGB")  # Pillow undoes Adobe's inverted CMYK when it opens the JPEG
    return img.convert("RGB")  # L, 1, P without transparency, YCbCr, LAB, HSV


def _integer_peak(img: Image.Image, arr: np.ndarray) -> float:
    """The full-scale value of a 16/32-bit integer image: scaled to 8 bits, never clipped."""
    if img.mode.startswith("I;16") or img.format == "PNG":  # PNG stores at most 16 bits a sample
        return 65535.0
    bits = img.info.get("bits") or getattr(img, "bits", None)
    if isinstance(bits, int) and 8 < bits <= 32:
        return float((1 << bits) - 1)
    top = float(arr.max())
    return 255.0 if top <= 255 else 65535.0 if top <= 65535 else float((1 << 32) - 1)
