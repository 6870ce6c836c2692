"""The classifier's training augmentation, batched in torch (no torchvision here), on whatever device trains.

    RandAugment(2, 9) -> RandomResizedCrop(size, scale 0.25-1, bicubic) from the whole image -> horizontal flip
    -> ColorJitter(0.4, 0.4, 0.2, 0.1) p=0.8 -> grayscale p=0.2 -> Gaussian blur p=0.2 -> solarize p=0.2
    -> CLIP normalisation; MixUp or CutMix (alpha 1) on 20% of batches.

Every op works on a whole batch with per-sample parameters, so the chain costs a few dozen tensor ops per batch
instead of a few thousand PIL calls. Images of different sizes go through RandAugment and the crop in groups of
one size each; after the crop every sample is size x size and the rest of the chain runs on the whole batch. All
randomness comes from the generator handed in (parameters are drawn on the CPU and moved), so a batch is a pure
function of its seed on any device. Images are floats in [0, 1].
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# RandAugment at magnitude 9 of 31 bins, the values torchvision's RandAugment(2, 9) uses.
RA_OPS = ("identity", "shear_x", "shear_y", "translate_x", "translate_y", "rotate", "brightness", "color",
          "contrast", "sharpness", "posterize", "solarize", "autocontrast", "equalize")
RA_SIGNED = {"shear_x", "shear_y", "translate_x", "translate_y", "rotate", "brightness", "color", "contrast",
             "sharpness"}
RA_NUM_OPS, RA_MAGNITUDE, RA_BINS = 2, 9, 31


def ra_magnitude(op: str, size: int) -> float:
    frac = RA_MAGNITUDE / (RA_BINS - 1)
    if op in ("shear_x", "shear_y"):
        return 0.3 * frac
    if op in ("translate_x", "translate_y"):
        return 150.0 / 331.0 * size * frac  # pixels
    if op == "rotate":
        return 30.0 * frac  # degrees
    if op in ("brightness", "color", "contrast", "sharpness"):
        return 0.9 * frac
    if op == "posterize":
        return float(8 - round(RA_MAGNITUDE / ((RA_BINS - 1) / 4)))  # bits kept
    if op == "solarize":
        return 255.0 * (1 - frac)  # threshold on the 0-255 scale
    return 0.0


CROP_SCALE, CROP_RATIO = (0.25, 1.0), (3 / 4, 4 / 3)
JITTER = dict(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
P_JITTER, P_GRAY, P_BLUR, P_SOLARIZE = 0.8, 0.2, 0.2, 0.2
# Blur kernel about a tenth of the image side, sigma 0.1-2 (the SimCLR recipe; the reference names no values) [?].
BLUR_SIGMA = (0.1, 2.0)
SOLARIZE_THRESHOLD = 0.5


def _rand(g: torch.Generator, n: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _sign(g: torch.Generator, n: int) -> torch.Tensor:
    return torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)


# ---- pixel ops (x: B,3,H,W in [0, 1]; per-sample factors f: B) ----

def gray(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def _blend(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """b + f * (a - b), clamped: f = 1 is a, f = 0 is b (PIL's ImageEnhance)."""
    return (b + f.view(-1, 1, 1, 1) * (a - b)).clamp(0, 1)


def brightness(x, f):
    return _blend(x, torch.zeros_like(x), f)


def saturation(x, f):
    return _blend(x, gray(x).expand_as(x), f)


def contrast(x, f):
    return _blend(x, gray(x).mean(dim=(1, 2, 3), keepdim=True).expand_as(x), f)


def sharpness(x, f):
    # PIL's SMOOTH kernel (ones with 5 in the centre, / 13) as a box sum plus 4x the centre.
    inner = x[:, :, 1:-1, 1:-1]
    smooth = (F.avg_pool2d(x, 3, stride=1) * 9 + 4 * inner) / 13
    blurred = x.clone()
    blurred[:, :, 1:-1, 1:-1] = smooth  # PIL leaves the one-pixel border as it was
    return _blend(x, blurred, f)


def posterize(x, bits: float):
    mask = 256 - (1 << (8 - int(bits)))
    return (torch.floor(x * 255 + 0.5).to(torch.int32) & mask).to(x.dtype) / 255


def solarize(x, threshold: float):
    """threshold on the 0-1 scale."""
    return torch.where(x >= threshold, 1 - x, x)


def autocontrast(x):
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    flat = hi <= lo
    scale = torch.where(flat, torch.ones_like(hi), 1 / (hi - lo).clamp_min(1e-12))
    lo = torch.where(flat, torch.zeros_like(lo), lo)
    return ((x - lo) * scale).clamp(0, 1)


def equalize(x):
    """Per-channel histogram equalisation on the 0-255 levels, as PIL's ImageOps.equalize does it."""
    b, c, h, w = x.shape
    v = torch.floor(x * 255 + 0.5).long().view(b * c, h * w)
    hist = torch.zeros(b * c, 256, device=x.device).scatter_add_(1, v, torch.ones_like(v, dtype=torch.float32))
    # The count of the last level present is left out of the step (PIL's rule).
    last = hist.gather(1, (255 - torch.flip(hist > 0, dims=[1]).float().argmax(1, keepdim=True)))
    step = torch.floor((h * w - last) / 255)
    cum = torch.cumsum(hist, 1)
    lut = torch.floor((torch.cat([torch.zeros_like(cum[:, :1]), cum[:, :-1]], 1) + torch.floor(step / 2))
                      / step.clamp_min(1)).clamp(0, 255)
    out = lut.gather(1, v)
    out = torch.where(step > 0, out, v.float())  # a near-constant channel stays as it is
    return (out / 255).view(b, c, h, w)


def hue(x, shift):
    """Rotate the hue by shift (fraction of a turn, per sample), through HSV."""
    maxc, _ = x.max(1, keepdim=True)
    minc, _ = x.min(1, keepdim=True)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    d = delta.clamp_min(1e-12)
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    h = torch.where(maxc == r, (g - b) / d, torch.where(maxc == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    h6 = ((h + shift.view(-1, 1, 1, 1)) % 1.0) * 6.0
    # HSV -> RGB in one expression: channel n in (5, 3, 1) is v - v*s*clamp(min(k, 4 - k), 0, 1), k = (n + h6) mod 6.
    k = (torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1) + h6) % 6
    return (maxc - maxc * s * torch.clamp(torch.minimum(k, 4 - k), 0, 1)).clamp(0, 1)


def gaussian_blur(x, sigma: torch.Tensor, kernel: int):
    """Separable blur with a per-sample sigma, reflect padding."""
    b, c, h, w = x.shape
    half = kernel // 2
    t = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
    k1 = torch.exp(-0.5 * (t.view(1, -1) / sigma.view(-1, 1).to(x.device, x.dtype)) ** 2)
    k1 = (k1 / k1.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (b*c, kernel)
    y = F.pad(x.reshape(1, b * c, h, w), (half, half, half, half), mode="reflect")
    y = F.conv2d(y, k1.view(b * c, 1, 1, kernel), groups=b * c)
    y = F.conv2d(y, k1.view(b * c, 1, kernel, 1), groups=b * c)
    return y.view(b, c, h, w)


# ---- geometry: one affine resampling per op, as (output pixel -> input pixel) maps in pixel units ----

def warp(x, matrix: torch.Tensor, out_size: int | tuple[int, int], mode: str, padding: str) -> torch.Tensor:
    """Resample x (B,3,H,W) to out_size (square side, or (height, width)) with per-sample 2x3 maps from output to
    input continuous pixel coords."""
    b, _, h, w = x.shape
    oh, ow = (out_size, out_size) if isinstance(out_size, int) else out_size
    m = matrix.to(x.device, x.dtype)
    d_out = torch.tensor([ow / 2, oh / 2], device=x.device, dtype=x.dtype)
    d_in = torch.tensor([w / 2, h / 2], device=x.device, dtype=x.dtype)
    a = m[:, :, :2] * d_out.view(1, 1, 2) / d_in.view(1, 2, 1)
    shift = (m[:, :, :2] @ d_out.view(2, 1)).squeeze(-1) + m[:, :, 2]
    theta = torch.cat([a, (shift / d_in.view(1, 2) - 1).unsqueeze(-1)], 2)
    grid = F.affine_grid(theta, [b, 3, oh, ow], align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)


def _affine(n: int) -> torch.Tensor:
    return torch.eye(3)[:2].repeat(n, 1, 1)


def ra_geometry(op: str, mag: torch.Tensor, h: int, w: int) -> torch.Tensor:
    m = _affine(len(mag))
    if op == "shear_x":  # about the top-left corner, as torchvision does for RandAugment
        m[:, 0, 1] = mag
    elif op == "shear_y":
        m[:, 1, 0] = mag
    elif op == "translate_x":
        m[:, 0, 2] = -mag
    elif op == "translate_y":
        m[:, 1, 2] = -mag
    elif op == "rotate":  # about the centre
        a = torch.deg2rad(mag)
        cos, sin = torch.cos(a), torch.sin(a)
        cx, cy = w / 2, h / 2
        m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = cos, -sin, sin, cos
        m[:, 0, 2] = cx - cos * cx + sin * cy
        m[:, 1, 2] = cy - sin * cx - cos * cy
    return m


def draw_rand_augment(g: torch.Generator, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """RandAugment(2, 9)'s draws for n samples: per round, an op (uniformly, with repeats) and a sign."""
    return [(torch.randint(len(RA_OPS), (n,), generator=g), _sign(g, n)) for _ in range(RA_NUM_OPS)]


def apply_rand_augment(x: torch.Tensor, draws: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """The drawn ops on x (B,3,H,W): each sample's two ops in turn, magnitudes scaled to the image's own width."""
    b, _, h, w = x.shape
    for choice, sign in draws:
        out = x.clone()
        for k, op in enumerate(RA_OPS):
            idx = (choice == k).nonzero().flatten()
            if op == "identity" or len(idx) == 0:
                continue
            mag = torch.full((len(idx),), ra_magnitude(op, h if op == "translate_y" else w))  # torchvision's
            if op in RA_SIGNED:
                mag = mag * sign[idx]
            sub = x[idx.to(x.device)]
            if op in ("shear_x", "shear_y", "translate_x", "translate_y", "rotate"):
                y = warp(sub, ra_geometry(op, mag, h, w), (h, w), "nearest", "zeros")
            elif op == "brightness":
                y = brightness(sub, 1 + mag.to(x.device))
            elif op == "color":
                y = saturation(sub, 1 + mag.to(x.device))
            elif op == "contrast":
                y = contrast(sub, 1 + mag.to(x.device))
            elif op == "sharpness":
                y = sharpness(sub, 1 + mag.to(x.device))
            elif op == "posterize":
                y = posterize(sub, ra_magnitude(op, w))
            elif op == "solarize":
                y = solarize(sub, ra_magnitude(op, w) / 255)
            elif op == "autocontrast":
                y = autocontrast(sub)
            else:
                y = equalize(sub)
            out[idx.to(x.device)] = y
        x = out
    return x


def rand_augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """RandAugment(2, 9) on a batch of one size."""
    return apply_rand_augment(x, draw_rand_augment(g, x.shape[0]))


CROP_ATTEMPTS = 10


def draw_crops(g: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RandomResizedCrop's draws for n samples, before any image size is known: area fractions and log aspect ratios
    of 10 tries each, and the box position."""
    scale = _rand(g, n * CROP_ATTEMPTS, *CROP_SCALE).view(n, CROP_ATTEMPTS)
    log_r = _rand(g, n * CROP_ATTEMPTS, math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])).view(n, CROP_ATTEMPTS)
    return scale, log_r, torch.rand(n, 2, generator=g)


def boxes_from(draws: tuple[torch.Tensor, torch.Tensor, torch.Tensor], h: torch.Tensor,
               w: torch.Tensor) -> torch.Tensor:
    """Boxes (top, left, height, width) in images of per-sample size (h, w), as torchvision's RandomResizedCrop
    places them: the first of 10 tries that fits, else the central crop of the whole image with its aspect ratio
    clamped to the allowed range."""
    scale, log_r, u = draws
    h, w = h.double().view(-1, 1), w.double().view(-1, 1)
    area = scale.double() * h * w
    ratio = torch.exp(log_r.double())
    cw = torch.round(torch.sqrt(area * ratio))
    ch = torch.round(torch.sqrt(area / ratio))
    ok = (cw > 0) & (ch > 0) & (cw <= w) & (ch <= h)
    found = ok.any(1)
    first = ok.float().argmax(1, keepdim=True)
    h, w = h.squeeze(1), w.squeeze(1)
    in_ratio = w / h
    fw = torch.where(in_ratio < CROP_RATIO[0], w, torch.where(in_ratio > CROP_RATIO[1],
                                                              torch.round(h * CROP_RATIO[1]), w))
    fh = torch.where(in_ratio < CROP_RATIO[0], torch.round(w / CROP_RATIO[0]), h)
    bh = torch.where(found, ch.gather(1, first).squeeze(1), fh)
    bw = torch.where(found, cw.gather(1, first).squeeze(1), fw)
    top = torch.where(found, torch.floor(u[:, 0].double() * (h - bh + 1)), torch.floor((h - bh) / 2))
    left = torch.where(found, torch.floor(u[:, 1].double() * (w - bw + 1)), torch.floor((w - bw) / 2))
    return torch.stack([top, left, bh, bw], 1).float()


def crop_boxes(g: torch.Generator, n: int, h: int, w: int) -> torch.Tensor:
    """RandomResizedCrop's boxes for n images of size (h, w)."""
    return boxes_from(draw_crops(g, n), torch.full((n,), h), torch.full((n,), w))


def crop_flip_matrix(boxes: torch.Tensor, flip: torch.Tensor, size: int) -> torch.Tensor:
    top, left, bh, bw = boxes.unbind(1)
    m = _affine(len(boxes))
    sx = bw / size
    m[:, 0, 0] = torch.where(flip, -sx, sx)
    m[:, 0, 2] = torch.where(flip, left + bw, left)
    m[:, 1, 1] = bh / size
    m[:, 1, 2] = top
    return m


def color_jitter(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """ColorJitter(0.4, 0.4, 0.2, 0.1): the four adjustments in a random order per sample."""
    b = x.shape[0]
    factors = {
        "brightness": _rand(g, b, 1 - JITTER["brightness"], 1 + JITTER["brightness"]),
        "contrast": _rand(g, b, 1 - JITTER["contrast"], 1 + JITTER["contrast"]),
        "saturation": _rand(g, b, 1 - JITTER["saturation"], 1 + JITTER["saturation"]),
        "hue": _rand(g, b, -JITTER["hue"], JITTER["hue"]),
    }
    order = torch.argsort(torch.rand(b, 4, generator=g), dim=1)
    fns = {"brightness": brightness, "contrast": contrast, "saturation": saturation, "hue": hue}
    x = x.clone()
    for r in range(4):
        for k, name in enumerate(fns):
            idx = (order[:, r] == k).nonzero().flatten()
            if len(idx):
                idx_d = idx.to(x.device)
                x[idx_d] = fns[name](x[idx_d], factors[name][idx].to(x.device))
    return x


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.to(a.device).view(-1, 1, 1, 1), a, b)


def normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CLIP_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


CHAINS = ("paper", "crop-flip", "none")


def _groups(images) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(sample indices, uint8 (n,3,h,w)) per image size: a batch tensor is one group; a list is split by size."""
    if isinstance(images, torch.Tensor):
        if images.dim() != 4:
            raise ValueError(f"expected a (B,3,H,W) batch, got shape {tuple(images.shape)}")
        return [(torch.arange(len(images)), images)]
    by_size: dict[tuple, list[int]] = {}
    for i, image in enumerate(images):
        by_size.setdefault(tuple(image.shape), []).append(i)
    return [(torch.tensor(idx), torch.stack([images[i] for i in idx])) for idx in by_size.values()]


def center_view(x: torch.Tensor, size: int) -> torch.Tensor:
    """The test view of float images (B,3,h,w): the central square of the shorter side, resized (bicubic)."""
    h, w = x.shape[2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[:, :, top:top + side, left:left + side]
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return x.clamp(0, 1)


def train_transform(images, size: int, g: torch.Generator, chain: str = "paper",
                    device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images -> normalised float (B,3,size,size) on device (default: where the images are).

    images: a (B,3,H,W) batch, or a list of (3,h,w) images of any sizes. Each sample's geometry (RandAugment, the
    crop) works on its whole image, whatever its aspect ratio; all randomness is drawn for the batch up front in one
    fixed order, so a sample's augmentation does not depend on how the batch groups by size.
    chain "paper" is the whole chain above; "crop-flip" stops after the crop and flip; "none" is the test view
    (ablations, and for backbones too small to learn through the full chain).
    """
    if chain not in CHAINS:
        raise ValueError(f"unknown augmentation chain {chain!r}; expected one of {', '.join(CHAINS)}")
    groups = _groups(images)
    b = sum(len(idx) for idx, _ in groups)
    device = torch.device(device) if device is not None else groups[0][1].device
    out = torch.empty(b, 3, size, size, device=device)
    if chain == "none":
        for idx, x in groups:
            out[idx.to(device)] = center_view(x.to(device, non_blocking=True).float() / 255, size)
        return normalize(out)
    ra = draw_rand_augment(g, b) if chain == "paper" else None
    flip = torch.rand(b, generator=g) < 0.5
    crops = draw_crops(g, b)
    hs = torch.empty(b)
    ws = torch.empty(b)
    for idx, x in groups:
        hs[idx], ws[idx] = x.shape[2], x.shape[3]
    boxes = boxes_from(crops, hs, ws)
    for idx, x in groups:
        x = x.to(device, non_blocking=True).float() / 255
        if ra is not None:
            x = apply_rand_augment(x, [(choice[idx], sign[idx]) for choice, sign in ra])
        m = crop_flip_matrix(boxes[idx], flip[idx], size)
        out[idx.to(device)] = warp(x, m, size, "bicubic", "border").clamp(0, 1)
    x = out
    if chain == "crop-flip":
        return normalize(x)
    jitter = (torch.rand(b, generator=g) < P_JITTER).nonzero().flatten()
    if len(jitter):
        x[jitter.to(x.device)] = color_jitter(x[jitter.to(x.device)], g)
    to_gray = torch.rand(b, generator=g) < P_GRAY
    x = _where(to_gray, gray(x).expand_as(x), x)
    blur = (torch.rand(b, generator=g) < P_BLUR).nonzero().flatten()
    sigma = _rand(g, b, *BLUR_SIGMA)
    kernel = max(3, int(0.1 * size) // 2 * 2 + 1)
    if len(blur):
        x[blur.to(x.device)] = gaussian_blur(x[blur.to(x.device)], sigma[blur], kernel)
    sol = torch.rand(b, generator=g) < P_SOLARIZE
    x = _where(sol, solarize(x, SOLARIZE_THRESHOLD), x)
    return normalize(x)


def test_transform(images: torch.Tensor) -> torch.Tensor:
    """uint8 images already resized (bicubic) and centre-cropped to the CLIP size -> normalised floats."""
    return normalize(images.float() / 255)


def mix(x: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, num_classes: int, rng: np.random.Generator,
        p: float, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """MixUp or CutMix (even odds) on a fraction p of batches; returns images and soft targets (rows sum to 1).

    Partners are drawn within each group (real with real, synthetic with synthetic) so that each loss term keeps
    its own source.
    """
    targets = F.one_hot(labels, num_classes).float().to(x.device)
    if p <= 0 or rng.random() >= p:
        return x, targets
    perm = torch.arange(len(labels))
    for gid in torch.unique(groups):
        idx = (groups == gid).nonzero().flatten()
        perm[idx] = idx[torch.from_numpy(rng.permutation(len(idx)))]
    perm = perm.to(x.device)
    lam = float(rng.beta(alpha, alpha))
    if rng.random() < 0.5:  # MixUp
        x = lam * x + (1 - lam) * x[perm]
    else:  # CutMix: a box of area (1 - lam), lam then set to the area actually kept
        h, w = x.shape[2:]
        cut = math.sqrt(1 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        x = x.clone()
        x[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return x, lam * targets + (1 - lam) * targets[perm]
