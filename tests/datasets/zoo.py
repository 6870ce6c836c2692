"""Odd and broken image files, as real copies contain them."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _rgb(w: int = 12, h: int = 8, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def good_odd(folder: Path) -> dict[str, Path]:
    """Files that are fine but need explicit handling: each must load as 3-channel uint8."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    out["cmyk"] = folder / "cmyk.jpg"
    _rgb(seed=1).convert("CMYK").save(out["cmyk"], quality=95)
    out["rgba"] = folder / "rgba.png"
    rgba = np.zeros((8, 12, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :6, 3] = 255  # left half opaque red, right half fully transparent
    Image.fromarray(rgba, "RGBA").save(out["rgba"])
    out["palette"] = folder / "palette.png"
    pal = Image.new("P", (12, 8), 0)
    pal.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    pal.paste(1, (0, 0, 6, 8))
    pal.save(out["palette"], transparency=0)  # index 0 (blue) is transparent
    out["16bit"] = folder / "gray16.png"
    Image.fromarray(np.full((8, 12), 65535 // 2, np.uint16)).save(out["16bit"])
    out["exif"] = folder / "rotated.jpg"
    img = _rgb(20, 10, seed=2)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    img.save(out["exif"], exif=exif, quality=95)
    return out


def bad(folder: Path) -> dict[str, Path]:
    """Files that are not usable images; every one must be reported with its path."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    buf = io.BytesIO()
    _rgb(64, 64, seed=3).save(buf, "JPEG", quality=95)
    out["truncated"] = folder / "truncated.jpg"
    out["truncated"].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    out["empty"] = folder / "empty.jpg"
    out["empty"].write_bytes(b"")
    out["text"] = folder / "notes.png"
    out["text"].write_text("this is not an image\n")
    out["bomb"] = folder / "huge.png"
    out["bomb"].write_bytes(png_header_only(20000, 20000))
    out["extension"] = folder / "scan.xyz"
    _rgb(seed=4).save(out["extension"], "PNG")
    return out


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one tiny compressed row: decoding would need the pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
