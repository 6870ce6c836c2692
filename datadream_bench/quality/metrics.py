"""The measures on feature matrices (rows: images; L2-normalised CLIP image embeddings). Pure functions.

Precision/recall/density/coverage come from `prdc` (the authors' implementation) and diversity from `vendi-score`
(the authors'); the Fréchet distance is the usual closed form on the two Gaussians' moments, with scipy's sqrtm.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

NEAREST_K = 5  # the k of precision/recall/density/coverage (the prdc paper's default)
MEMORISED_COS = 0.95  # a generated image this close (cosine) to its nearest real image, and that image a shot


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)); None with fewer than two rows on a side."""
    from scipy import linalg

    if len(a) < 2 or len(b) < 2:
        return None
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s_a @ s_b)
    if not np.isfinite(covmean).all():
        # singular product (fewer images than feature dimensions): the usual small offset on the diagonal
        offset = np.eye(len(s_a)) * 1e-6
        covmean = linalg.sqrtm((s_a + offset) @ (s_b + offset))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean))


def prdc(real: np.ndarray, fake: np.ndarray, nearest_k: int = NEAREST_K) -> dict[str, float] | None:
    """Precision, recall, density, coverage of `fake` against `real` (None when a side has <= k rows)."""
    from prdc import compute_prdc

    if len(real) <= nearest_k or len(fake) <= nearest_k:
        return None
    with contextlib.redirect_stdout(io.StringIO()):  # the library prints the set sizes; stdout is for results
        out = compute_prdc(real_features=real, fake_features=fake, nearest_k=nearest_k)
    return {k: float(v) for k, v in out.items()}


def vendi(features: np.ndarray) -> float | None:
    """The Vendi score (effective number of distinct images) with the cosine kernel; None below two rows."""
    from vendi_score import vendi as vs

    if len(features) < 2:
        return None
    return float(vs.score_dual(features.astype(np.float64), normalize=True))


def nearest(queries: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index, cosine) of each query row's nearest key row (rows are L2-normalised)."""
    sims = queries @ keys.T
    idx = sims.argmax(1)
    return idx, sims[np.arange(len(queries)), idx]


def memorisation(fake: np.ndarray, real: np.ndarray, is_shot: np.ndarray, fake_labels: np.ndarray,
                 shot_features: list[np.ndarray], threshold: float = MEMORISED_COS) -> dict:
    """memorised: the share of generated images whose nearest real image (of real, shots included) is one of the
    few shots, at cosine >= threshold. nearest_shot_cos: the mean cosine of each image to the closest shot of its
    class. chance: the share of the pool that is shots (what `nearest is a shot` gives by chance)."""
    idx, cos = nearest(fake, real)
    memorised = is_shot[idx] & (cos >= threshold)
    to_shot = [float((f @ shot_features[label].T).max()) for f, label in zip(fake, fake_labels)
               if len(shot_features[label])]
    return {"memorised": float(memorised.mean()) if len(fake) else None,
            "nearest_is_shot": float(is_shot[idx].mean()) if len(fake) else None,
            "nearest_shot_cos": float(np.mean(to_shot)) if to_shot else None,
            "chance": float(is_shot.mean()) if len(is_shot) else None}
