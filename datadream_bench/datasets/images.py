"""Image loading that never lies: EXIF orientation applied, every mode converted explicitly to 3-channel RGB."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps


class BadImageError(ValueError):
    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def load_rgb(path: str | Path) -> Image.Image:
    """Decode fully and return an RGB image; a file that is not a whole, sane image raises BadImageError."""
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb(img)
    except BadImageError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise BadImageError(path, f"{type(e).__name__}: {e}") from None


def to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max() > 255 or img.mode.startswith("I;16") else 255.0
        return Image.fromarray((arr * (255.0 / peak)).round().clip(0, 255).astype("uint8")).convert("RGB")
    return img.convert("RGB")
