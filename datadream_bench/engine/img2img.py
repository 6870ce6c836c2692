"""Init images for image-to-image methods: a real image brought to the sampler's square size.

"pad" keeps the whole image (the DISEF recipe: pad to a square, then resize); "crop" keeps the central square of
the image resized on its shorter side (the classifier's test view); "stretch" resizes without keeping the aspect.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..datasets.images import load_rgb
from ..errors import UsageError

FITS = ("pad", "crop", "stretch")


def pad_to_square(image: Image.Image, fill: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """The image centred on a square canvas of its longer side; the margins are `fill`."""
    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def center_square(image: Image.Image) -> Image.Image:
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side))


def fit_square(image: Image.Image, size: int, fit: str = "pad") -> Image.Image:
    if fit not in FITS:
        raise UsageError(f"unknown init-image fit {fit!r}; expected one of {', '.join(FITS)}")
    image = image.convert("RGB")
    if fit == "pad":
        image = pad_to_square(image)
    elif fit == "crop":
        image = center_square(image)
    if image.size != (size, size):
        image = image.resize((size, size), Image.BICUBIC)
    return image


def load_init_image(path: str | Path, size: int, fit: str = "pad") -> Image.Image:
    return fit_square(load_rgb(path), size, fit)
