"""The cost of a grid before running it: images, FLOPs per stage and GPU time for methods x datasets x shots x seeds.

Everything comes from what a run would use: class counts from the dataset registry, each method's own account of a
cell under the profile's config (Method.cost: images, how each is made, fine-tuning steps), the classifier's
(Classifier.cost: steps, images seen, val evaluations), and the real backbones' FLOPs (perf.flops). GPU time is FLOPs
over an achieved rate per stage.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
    disk_bytes: int = 0  # the generated images' PNGs, at most (costs.png_bytes_at_most)
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


def _split_sizes(dataset: str) -> tuple[int, int] | None:
    """(val, test) images of a paper dataset's CoOp split; None for datasets the registry has no sizes for."""
    from ..datasets.registry import DATASETS

    info = DATASETS.get(dataset)
    if info is None:
        return None
    train, val, test = info.coop_sizes
    return (val or round(train * info.val_fraction)), test


def method_cost(method, config, classes: int, shots: int):
    """The method's own account of a cell (Method.cost), checked: a plan never guesses at config field names."""
    from ..contract import MethodCost
    from ..validation import ContractError, origin

    cost = method.cost(config, classes, shots)
    if not isinstance(cost, MethodCost):
        raise ContractError(f"{origin(method)}: method {method.name!r}: cost() returned {type(cost).__name__}; it "
                            "must return an api.MethodCost")
    return cost


def plan_cell(row: PlanRow, method, config, classifier, clf_config, generates: bool = True) -> None:
    """Add one seed's work of (method, dataset, shots) to row, from the method's and the classifier's cost hooks.
    generates=False: the generated set is another shot count's (a method that never reads the shots), so its
    images are not made again; the classifier still trains on them."""
    classes, shots = row.classes, row.shots
    cost = method_cost(method, config, classes, shots)
    row.notes.extend(cost.notes)
    if generates:
        row.images += cost.images
        row.disk_bytes += cost.images * costs.png_bytes_at_most()
    if cost.images and generates:
        g = costs.Generation(steps=cost.steps, guidance_scale=cost.guidance_scale, strength=cost.strength)
        row.flops["generate"] += cost.images * costs.image_flops(g)
    row.adapt_steps += cost.adapt_steps
    if cost.adapt_images:
        row.flops["adapt"] += cost.adapt_images * costs.sd_lora_step_flops(1, cost.adapt_text_encoder)

    synthetic = cost.images // classes if classes else 0
    for setting in row.settings:
        clf = classifier.cost(clf_config, setting, classes, synthetic, shots)
        if clf is None:
            row.notes.append(f"classifier {classifier.name}: declares no cost (Classifier.cost); training not counted")
            continue
        row.notes.extend(clf.notes)
        row.classifier_steps += clf.steps
        row.flops["classifier"] += (clf.images_seen * costs.classifier_step_flops(1, 0)
                                    + clf.steps * costs.classifier_step_flops(0, classes))
        sizes = _split_sizes(row.dataset)
        if sizes is None:
            row.notes.append(f"{row.dataset}: split sizes unknown; evaluation not counted")
            continue
        val, test = sizes
        row.flops["classifier"] += costs.classifier_eval_flops(test + clf.evaluations * val, classes)


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
    method_names = expand(methods, registry.methods, "method", registry=registry)
    # "all" is what `dd-bench run --dataset all` runs: the datasets read from a data root, not the built-in demo
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
                for _ in seeds:
                    # one set per seed for every shot count when the method never reads the shots
                    plan_cell(row, obj, configs[m], clf, clf_config, generates=obj.reads_shots or k == shots[0])
                if not (obj.reads_shots or k == shots[0]):
                    row.notes.append(f"{m}: its images do not depend on the shots; the {shots[0]}-shot set serves "
                                     "every shot count, so they are counted once")
                row.notes = sorted(set(row.notes))
                row.seconds = {s: row.flops[s] / (rates.tflops[s] * 1e12) for s in STAGES}
                rows.append(row)
    return rows
