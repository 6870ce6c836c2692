"""The cost of a grid before running it: images, FLOPs per stage and GPU time for methods x datasets x shots x seeds.

Everything comes from what a run would use: class counts from the dataset registry, each method's config under the
profile (images per class, steps, guidance, LoRA epochs and batch), the classifier's config (epochs, batch, val
every n epochs), and the real backbones' FLOPs (perf.flops). GPU time is FLOPs over an achieved rate per stage.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

from ..classifier import schedule as schedules
from ..errors import UsageError
from . import costs

# Without a measured rate: 40% of an H100's dense bf16 peak for every stage, a typical MFU of well-fed bf16
# diffusion inference and LoRA training. An assumption, said so wherever it is used.
ASSUMED_MFU = 0.40
STAGES = ("generate", "adapt", "classifier")
# Which measurement of benchmarks/gpu.py calibrates which stage.
CALIBRATION_KEYS = {"generate": "generation", "adapt": "sd_lora_train", "classifier": "clip_lora_train"}


@dataclass(frozen=True)
class Rates:
    """Achieved TFLOP/s per stage, and where the numbers come from."""

    tflops: dict[str, float]
    source: str

    @staticmethod
    def assumed(device: str = "h100-sxm") -> Rates:
        rate = ASSUMED_MFU * peak(device)
        return Rates({s: rate for s in STAGES},
                     f"assumed, not measured: {ASSUMED_MFU:.0%} of the {device} dense bf16 peak ({peak(device):g} "
                     f"TFLOP/s) = {rate:.0f} TFLOP/s for every stage")

    @staticmethod
    def given(tflops: float) -> Rates:
        if not (tflops > 0 and math.isfinite(tflops)):
            raise UsageError(f"--rate {tflops}: expected a positive, finite number of achieved TFLOP/s")
        return Rates({s: tflops for s in STAGES}, f"given on the command line: {tflops:g} TFLOP/s for every stage")

    @staticmethod
    def from_calibration(path: Path) -> Rates:
        """Rates measured by benchmarks/gpu.py (its JSON output)."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UsageError(f"--calibration {path}: cannot read a benchmarks/gpu.py result ({e})") from None
        rates, missing = {}, []
        for stage, key in CALIBRATION_KEYS.items():
            value = (data.get("results", {}).get(key) or {}).get("achieved_tflops")
            if isinstance(value, (int, float)) and value > 0:
                rates[stage] = float(value)
            else:
                missing.append(f"results.{key}.achieved_tflops")
        if missing:
            raise UsageError(f"--calibration {path}: no {', '.join(missing)}; expected the JSON that "
                             "benchmarks/gpu.py writes (run without --tiny)")
        if data.get("tiny"):
            raise UsageError(f"--calibration {path} was measured with --tiny models: its rates say nothing about "
                             "the paper's backbones")
        machine = data.get("machine", {}).get("gpu") or "unknown GPU"
        return Rates(rates, f"measured by benchmarks/gpu.py on {machine} ({path}): " + ", ".join(
            f"{s} {r:.0f}" for s, r in rates.items()) + " TFLOP/s")


def peak(device: str) -> float:
    if device not in costs.PEAK_TFLOPS:
        raise UsageError(f"unknown device {device!r}; known: {', '.join(costs.PEAK_TFLOPS)}")
    return costs.PEAK_TFLOPS[device]


@dataclass
class PlanRow:
    """One (method, dataset, shots) over all its seeds; FLOPs summed over seeds and settings."""

    method: str
    dataset: str
    shots: int
    seeds: int
    classes: int
    settings: list[str]
    images: int = 0
    adapt_steps: int = 0
    classifier_steps: int = 0
    flops: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    seconds: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    notes: list[str] = field(default_factory=list)

    @property
    def total_flops(self) -> float:
        return sum(self.flops.values())

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def as_dict(self) -> dict:
        out = asdict(self)
        out.update(total_flops=self.total_flops, total_seconds=self.total_seconds)
        return out


def _generation(method, config, shots: int, notes: list[str]) -> costs.Generation:
    default = costs.Generation()
    strength = getattr(config, "strength", default.strength)
    if strength is None and callable(getattr(method, "strength", None)):
        strength = method.strength(config, shots)  # a method whose noise level follows the shot count says it
    if strength is None:
        notes.append(f"{method.name}: img2img strength is set per cell; counted as the full schedule (upper bound)")
        strength = 1.0
    return costs.Generation(
        steps=getattr(config, "num_inference_steps", default.steps),
        guidance_scale=getattr(config, "guidance_scale", default.guidance_scale),
        strength=strength,
    )


def _adapt_units(method, config, classes: int, shots: int, seed: int) -> list[str] | None:
    """The method's adapt units, asked of the method itself with a context holding only what a plan knows (class
    count, shots, seed). None when the method needs more of a cell than that to say."""
    from ..context import CellContext

    ctx = CellContext(
        spec=SimpleNamespace(shots=shots, seed=seed, method=method.name), config=config,
        dataset=SimpleNamespace(classes=[f"class {i}" for i in range(classes)]), fewshot=None, device="meta",
        dtype=None,
    )
    try:
        return list(method.adapt_units(ctx))
    except Exception:  # noqa: BLE001 - a method free to look at anything of its cell; the plan says it cannot tell
        return None


def _split_sizes(dataset: str) -> tuple[int, int] | None:
    """(val, test) images of a paper dataset's CoOp split; None for datasets the registry has no sizes for."""
    from ..datasets.registry import DATASETS

    info = DATASETS.get(dataset)
    if info is None:
        return None
    train, val, test = info.coop_sizes
    return (val or round(train * info.val_fraction)), test


def plan_cell(row: PlanRow, method, config, clf_config, seed: int) -> None:
    """Add one seed's work of (method, dataset, shots) to row."""
    classes, shots = row.classes, row.shots
    ipc = getattr(config, "images_per_class", 0) if method.generates else 0
    if method.generates and not ipc:
        row.notes.append(f"{method.name}: no images_per_class in its config; generation not counted")
    images = ipc * classes
    row.images += images
    if images:
        row.flops["generate"] += images * costs.image_flops(_generation(method, config, shots, row.notes))
        if getattr(config, "filter_max_attempts", 1) > 1 and (getattr(config, "clip_filter", True)
                                                               and getattr(config, "filter_model", None) != ""):
            bound = ("up to filter_class_budget more per class" if getattr(config, "filter_timeout", "image") == "class"
                     else "up to filter_max_attempts each")
            row.notes.append(f"{method.name}: each image counted once; images its filter rejects cost more "
                             f"({bound}), and the filter's own CLIP is not counted")

    units = _adapt_units(method, config, classes, shots, seed)
    if units is None:
        row.notes.append(f"{method.name}: adapt units need a full cell; adaptation not counted")
    elif units:
        epochs, batch = getattr(config, "epochs", None), getattr(config, "train_batch_size", None)
        if epochs is None or batch is None:
            row.notes.append(f"{method.name}: its adapt stage (not LoRA epochs: captioning, say) is not counted")
        else:
            per_unit = max(1, round(shots * classes / len(units)))  # images each unit trains on
            row.adapt_steps += len(units) * epochs * math.ceil(per_unit / batch)
            per_image = costs.sd_lora_step_flops(1, getattr(config, "train_text_encoder", True))
            row.flops["adapt"] += len(units) * epochs * per_unit * per_image

    for setting in row.settings:
        # The classifier's own rule for rows and steps (classifier.schedule), so plan and training agree.
        real = 0 if setting in ("synthetic", "none") else classes * shots * schedules.real_repeats(
            setting, shots, ipc, getattr(clf_config, "budget_images_per_class", ipc))
        n = (images if setting in ("synthetic", "synthetic+real") else 0) + real
        if n:
            sched = schedules.schedule(clf_config, n, classes, setting, shots)
            row.classifier_steps += sched.steps
            row.flops["classifier"] += (sched.rows_seen * costs.classifier_step_flops(1, 0)
                                        + sched.steps * costs.classifier_step_flops(0, classes))
        sizes = _split_sizes(row.dataset)
        if sizes is None:
            row.notes.append(f"{row.dataset}: split sizes unknown; evaluation not counted")
            continue
        val, test = sizes
        evals = len(sched.evals) if n else 0
        row.flops["classifier"] += costs.classifier_eval_flops(test + evals * val, classes)


def plan(methods: list[str], datasets: list[str], shots: list[int], seeds: list[int], *, profile: str = "paper",
         settings: list[str] | None = None, overrides: dict | None = None, classifier: str = "clip-lora",
         rates: Rates | None = None) -> list[PlanRow]:
    from ..config import resolve_config, route_overrides
    from ..plugins import load_registry
    from ..profiles import get_profile
    from ..runner.grid import expand, settings_for

    if not shots or any(k < 1 for k in shots):
        raise UsageError(f"--shots {shots}: expected positive whole numbers")
    if not seeds:
        raise UsageError("no seeds given")
    profile_obj = get_profile(profile)
    registry = load_registry()
    method_names = expand(methods, registry.methods, "method")
    dataset_names = expand(datasets, registry.datasets, "dataset", include=lambda a: a.needs_data_root)
    clf = registry.get("classifiers", classifier)
    method_objs = {m: registry.get("methods", m) for m in method_names}
    per_method, for_clf = route_overrides(overrides or {}, {m: o.Config for m, o in method_objs.items()}, clf.name)
    configs = {m: resolve_config(m, o.Config, o.profile_defaults, profile_obj.name, per_method[m])
               for m, o in method_objs.items()}
    clf_config = resolve_config(clf.name, clf.Config, clf.profile_defaults, profile_obj.name, for_clf)
    rates = rates or Rates.assumed()

    rows = []
    for d in dataset_names:
        classes = registry.datasets[d].num_classes
        if not classes:
            raise UsageError(f"dataset {d!r} does not declare its class count; it cannot be planned")
        for k in shots:
            for m, obj in method_objs.items():
                row = PlanRow(m, d, k, len(seeds), classes, settings_for(obj, settings))
                if not row.settings:
                    continue
                for seed in seeds:
                    plan_cell(row, obj, configs[m], clf_config, seed)
                row.notes = sorted(set(row.notes))
                row.seconds = {s: row.flops[s] / (rates.tflops[s] * 1e12) for s in STAGES}
                rows.append(row)
    return rows
