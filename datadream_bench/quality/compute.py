"""The quality record of one generated set: computed once per (generated set, feature model), kept as JSON in the
work dir, and recomputed only when what judged class consistency has changed (a real-only classifier of the same
seed appeared) or the measures' version moved on.

Features are the cell's own CLIP's image embeddings; nothing is downloaded. Class consistency is judged by the
real-only classifier of the same seed where the store has one (clip-lora), else by zero-shot CLIP with the
dataset's class prompts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..runner.workdir import WorkDir, write_json_atomic
from ..store import ResultsStore
from . import metrics
from .features import cached, encode
from .pool import load_real_pool
from .sets import classifier_folder, few_shot, generated_images

VERSION = 1  # bump when a measure changes: stored records of older versions are recomputed
JUDGE_METHOD = "real-only"
JUDGE_CLASSIFIER = "clip-lora"


class QualityUnavailable(Exception):
    """Why a cell's set cannot be measured (said to the user, never a crash of the view)."""


def quality_path(workdir: WorkDir, artifacts: dict, clip_fingerprint: str) -> Path:
    """Per generated set, few-shot draw and feature model: memorisation is measured against the shots, and a set
    made without them (zero-shot SD) serves several draws."""
    name = f"{artifacts['generate']}-{artifacts['fewshot']}-{clip_fingerprint}.json"
    return workdir.root / "quality" / "sets" / name


def find_judge(store: ResultsStore, record: dict) -> dict | None:
    """The record of the real-only clip-lora cell with this cell's dataset, shots, seed, profile and CLIP."""
    spec = record["spec"]
    for r in store.rows(with_record=True, method=JUDGE_METHOD, dataset=spec["dataset"], shots=spec["shots"],
                        seed=spec["seed"], profile=spec["profile"], classifier=JUDGE_CLASSIFIER):
        inputs = r["record"]["spec"].get("inputs") or {}
        if inputs.get("clip") == spec["inputs"].get("clip") and inputs.get("dataset") == spec["inputs"]["dataset"]:
            return r["record"]
    return None


def judge_key(workdir: WorkDir, judge: dict | None) -> str:
    if judge is not None:
        folder = classifier_folder(workdir, judge)
        if folder is not None and (folder / "state.safetensors").is_file():
            return f"real-only:{judge['artifacts']['classifier']}"
    return "zero-shot-clip"


def set_quality(workdir: WorkDir, record: dict, store: ResultsStore | None = None, device: str | None = None,
                progress: Callable[[str, int, int], None] = lambda what, done, total: None) -> dict:
    """The quality record of the cell's generated set (computed now if not on disk). Raises QualityUnavailable."""
    spec, artifacts = record["spec"], record.get("artifacts") or {}
    if "generate" not in artifacts:
        raise QualityUnavailable(f"{spec['method']} generates no images")
    store = store or ResultsStore(workdir.store)
    clip_fp = (spec.get("inputs") or {}).get("clip") or ""
    judge = find_judge(store, record)
    judging = judge_key(workdir, judge)
    path = quality_path(workdir, artifacts, clip_fp)
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("version") == VERSION and saved["consistency_judge"]["key"] == judging:
            return saved
    result = measure(workdir, record, judge if judging != "zero-shot-clip" else None, device, progress)
    result["consistency_judge"]["key"] = judging
    write_json_atomic(path, result)
    return result


def measure(workdir: WorkDir, record: dict, judge: dict | None, device: str | None,
            progress: Callable[[str, int, int], None]) -> dict:
    from ..models.loading import default_device

    spec, artifacts = record["spec"], record["artifacts"]
    device = device or default_device()
    pool = load_real_pool(workdir, spec["inputs"]["dataset"])
    if pool is None:
        raise QualityUnavailable(f"no real-pool listing for dataset {spec['dataset']} in {workdir.root} "
                                 f"(runs write it; rerun the cell with this version of dd-bench)")
    images = generated_images(workdir, record)
    if not images:
        raise QualityUnavailable(f"the generated set of {spec['method']} has no finished images")
    drawn = few_shot(workdir, record)
    if drawn is None:
        raise QualityUnavailable(f"the few-shot draw {artifacts['fewshot']} is not in {workdir.root}")
    classes, shots = drawn
    clip_model, clip_fp = spec["clip_model"], spec["inputs"]["clip"]
    folder = workdir.root / "quality" / "features" / clip_fp

    def features(name: str, paths: list[Path], what: str) -> np.ndarray:
        return cached(folder, name, paths, lambda: encode(paths, clip_model, device,
                                                         progress=lambda d, t: progress(what, d, t)))

    pool_paths = [p for p, _ in pool["samples"]]
    pool_labels = np.array([label for _, label in pool["samples"]], dtype=np.int64)
    shot_paths = [p for group in shots for p in group]
    shot_labels = np.array([label for label, group in enumerate(shots) for _ in group], dtype=np.int64)
    fake_paths = [g.path for g in images]
    fake_labels = np.array([g.label for g in images], dtype=np.int64)
    real = features(f"pool-{spec['inputs']['dataset']}", pool_paths, "quality: real pool")
    shot = features(f"shots-{artifacts['fewshot']}", shot_paths, "quality: shots")
    fake = features(f"set-{artifacts['generate']}", fake_paths, "quality: generated set")

    # Nearest real image over the pool and the shots (a shot the pool also holds is counted once, as a shot).
    shot_set = {str(p) for p in shot_paths}
    keep = np.array([str(p) not in shot_set for p in pool_paths], dtype=bool)
    candidates = np.concatenate([real[keep], shot])
    is_shot = np.concatenate([np.zeros(int(keep.sum()), dtype=bool), np.ones(len(shot), dtype=bool)])
    memo = metrics.memorisation(fake, candidates, is_shot, fake_labels,
                                [shot[shot_labels == c] for c in range(len(classes))])

    predicted, judge_text = judge_predictions(judge, workdir, fake_paths, fake, pool["prompts"], clip_model, device)
    correct = predicted == fake_labels

    per_class = {}
    for c, name in enumerate(classes):
        f_c, r_c = fake[fake_labels == c], real[pool_labels == c]
        if not len(f_c):
            continue
        pr = metrics.prdc(r_c, f_c) or {}
        per_class[name] = {"n": int(len(f_c)), "fd": metrics.frechet_distance(f_c, r_c), **pr,
                           "vendi": metrics.vendi(f_c), "consistency": float(correct[fake_labels == c].mean())}

    def class_mean(key: str) -> float | None:
        values = [v[key] for v in per_class.values() if v.get(key) is not None]
        return float(np.mean(values)) if values else None

    summary = {"fd": metrics.frechet_distance(fake, real), "fd_class": class_mean("fd"),
               **{k: class_mean(k) for k in ("precision", "recall", "density", "coverage", "vendi")},
               "memorised": memo["memorised"], "nearest_is_shot": memo["nearest_is_shot"],
               "nearest_shot_cos": memo["nearest_shot_cos"], "consistency": float(correct.mean())}
    return {
        "version": VERSION, "cell_key": record["cell_key"], "method": spec["method"], "dataset": spec["dataset"],
        "seed": spec["seed"], "generated_set": artifacts["generate"], "n_generated": len(images),
        "feature_model": {"source": clip_model, "fingerprint": clip_fp,
                          "space": "CLIP image embeddings (visual projection, L2-normalised), base weights"},
        "real_pool": {"rule": pool["pool"], "images": len(pool_paths), "train_images": pool["train_images"]},
        "settings": {"nearest_k": metrics.NEAREST_K, "memorised_cos": metrics.MEMORISED_COS,
                     "chance_nearest_is_shot": memo["chance"],
                     "class_means": "precision, recall, density, coverage, vendi and fd_class are per-class "
                                    "values averaged over classes; fd is over the whole set"},
        "consistency_judge": {"kind": judge_text},
        "summary": summary,
        "per_class": per_class,
    }


def judge_predictions(judge: dict | None, workdir: WorkDir, paths: list[Path], base_features: np.ndarray,
                      prompts: list[str], clip_model: str, device: str) -> tuple[np.ndarray, str]:
    """Labels the judge gives the generated images: the real-only classifier (its LoRA state), else zero-shot."""
    import torch

    from ..classifier import model as clip
    from ..models.loading import load_clip

    model, tokenizer, size = load_clip(clip_model, device)
    text = clip.text_inputs(tokenizer, prompts, model.config.text_config.max_position_embeddings, device)
    if judge is None:
        with torch.no_grad():
            t = clip.text_features(model.eval(), text).float().cpu().numpy()
        return (base_features @ t.T).argmax(1), "zero-shot CLIP with the class prompts"
    from safetensors.torch import load_file

    from ..classifier import data

    cfg = judge["spec"]["classifier_config"]
    clip.add_lora(model, cfg["lora_rank"], cfg["lora_alpha"], cfg["lora_dropout"])
    clip.load_lora_state(model, load_file(classifier_folder(workdir, judge) / "state.safetensors"))
    out = []
    for start in range(0, len(paths), 1024):
        images = data.decode_all([str(p) for p in paths[start:start + 1024]], size, what="generated image")
        out.append(clip.predict(model, text, images, 256, device, cfg.get("precision", "auto")).numpy())
    return np.concatenate(out), f"the real-only classifier of seed {judge['spec']['seed']} ({judge['cell_key'][:10]})"
