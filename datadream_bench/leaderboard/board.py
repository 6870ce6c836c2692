"""Rows of the leaderboard from the store's results: experiments, seeds, scores, and which rows compare."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field

from ..fingerprint import fingerprint
from ..method import NONE, REAL, SYNTHETIC, SYNTHETIC_REAL
from ..store.planned import DATA_OPTIONS

# Columns that split rows apart when the store holds several values of them (several shot counts, say).
SPLITTERS = ("shots", "profile", "classifier")
# The order of the setting blocks, as papers lay them out; reference rows (real shots only, zero-shot) come last.
BLOCKS = (SYNTHETIC, SYNTHETIC_REAL, REAL, NONE)
REFERENCE_SETTINGS = (REAL, NONE)


def experiment(record: dict) -> dict:
    """What a result depends on besides its row key (method, setting, shots, profile, classifier), dataset and seed.

    Model checkpoints count by content fingerprint, not path; the dataset by its options, not its fingerprint (each
    dataset has its own, and the row spans datasets)."""
    spec = record.get("spec") or {}
    provenance = record.get("provenance") or {}
    data = provenance.get("dataset") or {}
    inputs = spec.get("inputs") or {}
    return {
        "method_config": spec.get("method_config") or {},
        "classifier_config": spec.get("classifier_config") or {},
        "precision": spec.get("precision"),
        "models": {k: v for k, v in inputs.items() if k != "dataset"},
        "data": {k: data[k] for k in DATA_OPTIONS if k in data},
        "method_version": provenance.get("method_version"),
        "classifier_version": provenance.get("classifier_version"),
    }


def config_fingerprint(record: dict) -> str:
    return fingerprint(experiment(record), 12)


def _flat(exp: dict) -> dict[str, object]:
    """An experiment as KEY=VALUE pairs named as `--set` names them (classifier.KEY for the classifier)."""
    out: dict[str, object] = {}
    for k, v in exp["method_config"].items():
        out[k] = v
    for k, v in exp["classifier_config"].items():
        out[f"classifier.{k}"] = v
    for k, v in exp["models"].items():
        out[f"{k} model"] = v if not isinstance(v, dict) else fingerprint(v, 8)
    for k, v in exp["data"].items():
        out[k] = v
    for k in ("precision", "method_version", "classifier_version"):
        out[k.replace("_", " ")] = exp[k]
    return out


def differences(experiments: list[dict]) -> list[str]:
    """For experiments of one row key: per experiment, the settings in which it differs from the others."""
    flats = [_flat(e) for e in experiments]
    names = sorted({k for f in flats for k in f})
    varying = [k for k in names if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]
    return [", ".join(f"{k}={_short(f.get(k, '-'))}" for k in varying) for f in flats]


def _short(v) -> str:
    text = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return text if len(text) <= 24 else text[:10] + "…" + text[-8:]


@dataclass
class Score:
    values: list[float]  # one per seed: that seed's latest result
    seeds: list[int] = field(default_factory=list)
    expected: list[int] = field(default_factory=list)  # the seeds the runs asked for (empty: nothing planned)
    superseded: int = 0  # results left out: an older result of the same seed, or one on an older copy of the data
    published: bool = False  # a number the user supplied from a paper, not measured here
    cells: list[str] = field(default_factory=list)  # the store keys of the results kept (one per seed)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def missing(self) -> list[int]:
        return sorted(set(self.expected) - set(self.seeds))

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n-1); None below two seeds (there is no spread to speak of)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def ci95(self) -> float | None:
        """Half-width of the 95% confidence interval of the mean (Student's t, n-1 degrees of freedom)."""
        if self.std is None:
            return None
        from scipy.stats import t

        return float(t.ppf(0.975, self.n - 1)) * self.std / math.sqrt(self.n)

    def spread(self, ci: bool = False) -> float | None:
        return self.ci95 if ci else self.std

    def count(self) -> str:
        if self.published:
            return ""
        if self.missing:
            return f"({self.n} of {len(set(self.expected) | set(self.seeds))})"
        return f"({self.n})"

    def text(self, ci: bool = False) -> str:
        if self.mean is None:
            return f"missing {self.count()}"
        spread = self.spread(ci)
        body = f"{self.mean:.1f}" if spread is None else f"{self.mean:.1f} ± {spread:.1f}"
        return f"{body} {self.count()}".strip()


@dataclass
class Row:
    key: dict  # method, setting, shots, profile, classifier
    scores: dict[str, Score]
    config: str = ""  # the experiment's config fingerprint ("" for published rows)
    variant: str = ""  # how this experiment differs from the others of its row key ("" when it has none)
    source: str | None = None  # published rows: where the number comes from
    experiment: dict = field(default_factory=dict)

    @property
    def block(self) -> str:
        return "published" if self.source is not None else self.key["setting"]

    @property
    def reference(self) -> bool:
        return self.key["setting"] in REFERENCE_SETTINGS


def comparable(a: Row, b: Row) -> bool:
    """Measured under the same conditions, whatever the method: shots, profile, classifier, CLIP checkpoint, data."""
    def clip(r: Row):
        return (r.experiment.get("models") or {}).get("clip")

    return (all(a.key[k] == b.key[k] for k in ("shots", "profile", "classifier"))
            and a.experiment.get("data") == b.experiment.get("data") and clip(a) == clip(b))


@dataclass
class Leaderboard:
    datasets: list[str]
    keys: list[str]  # the row key columns shown: method, setting, any splitter with several values, config
    rows: list[Row]
    fixed: dict = field(default_factory=dict)  # splitters with one value, said once in the caption
    ci: bool = False  # spread shown as a 95% CI half-width instead of the sample std
    quality: object = None  # a quality.table.QualityTable, when asked for (`leaderboard --quality`)

    def average(self, row: Row) -> float | None:
        """Mean of the per-dataset means, only where the row has every dataset."""
        if len(self.datasets) < 2 or any(row.scores.get(d) is None or row.scores[d].mean is None
                                         for d in self.datasets):
            return None
        return statistics.fmean(row.scores[d].mean for d in self.datasets)

    def blocks(self) -> list[tuple[str, list[Row]]]:
        order = [*BLOCKS, "published"]
        present = sorted({r.block for r in self.rows}, key=lambda b: order.index(b) if b in order else len(order))
        return [(b, [r for r in self.rows if r.block == b]) for b in present]

    def best(self, row: Row, dataset: str) -> bool:
        """The highest mean in this dataset's column among the measured rows of its setting block that it can be
        compared with (same shots, profile, classifier, CLIP and data: a 16-shot row never outshines a 1-shot one)."""
        score = row.scores.get(dataset)
        if row.source is not None or row.reference or score is None or score.mean is None:
            return False
        rivals = [r.scores[dataset].mean for r in self.rows if r.block == row.block and r.source is None
                  and comparable(r, row) and dataset in r.scores and r.scores[dataset].mean is not None]
        return len(rivals) > 1 and score.mean == max(rivals)

    def real_only(self, row: Row) -> Row | None:
        """The real-only row this row is compared with: same shots, profile, classifier, CLIP checkpoint and data
        options (None for reference and published rows, or when there is no such row or several)."""
        if row.source is not None or row.reference:
            return None
        same = [r for r in self.rows if r.key["setting"] == REAL and r.source is None and comparable(r, row)]
        return same[0] if len(same) == 1 else None

    def delta(self, row: Row, dataset: str) -> float | None:
        """Mean minus the real-only mean on this dataset, in points."""
        ref = self.real_only(row)
        mine = row.scores.get(dataset)
        theirs = ref.scores.get(dataset) if ref is not None else None
        if mine is None or theirs is None or mine.mean is None or theirs.mean is None:
            return None
        return mine.mean - theirs.mean

    def key_text(self, row: Row) -> list[str]:
        out = []
        for k in self.keys:
            if k == "config":
                out.append(row.variant or "")
            elif k == "method" and row.source is not None:
                out.append(f"{row.key['method']} (published: {row.source})")
            else:
                out.append(str(row.key.get(k, "")))
        return out

    def missing(self) -> list[str]:
        """One line per (row, dataset) that lacks seeds the runs asked for."""
        lines = []
        for row in self.rows:
            for d, s in row.scores.items():
                if s.missing:
                    what = "every seed" if s.n == 0 else "seed " + ", ".join(map(str, s.missing))
                    lines.append(f"{' / '.join(t for t in self.key_text(row) if t)} on {d}: {what} missing")
        return lines

    def superseded(self) -> int:
        return sum(s.superseded for r in self.rows for s in r.scores.values())


def _latest(results: list[dict]) -> tuple[list[dict], int]:
    """Of one (row, dataset)'s results: those on the newest copy of the data, one per seed (its latest). Returns
    (kept, left out)."""
    if not results:
        return [], 0

    def data(r: dict):
        return (((r.get("record") or {}).get("spec") or {}).get("inputs") or {}).get("dataset")

    results = sorted(results, key=lambda r: r.get("finished") or "")
    current = [r for r in results if data(r) == data(results[-1])]
    by_seed = {r["seed"]: r for r in current}  # sorted by finish time: the latest of each seed wins
    return sorted(by_seed.values(), key=lambda r: r["seed"]), len(results) - len(by_seed)


def build(results: list[dict], planned: list[dict] = (), references: list[dict] = (), ci: bool = False
          ) -> Leaderboard:
    """results: store rows with their record; planned: the cells the runs asked for (the same columns and a record
    holding spec and provenance); references: published numbers (method, dataset, shots, setting, top1, source)."""
    results, planned = list(results), list(planned)
    everything = results + planned
    if not everything:
        return Leaderboard([], ["method", "setting"], [], {}, ci)
    datasets = sorted({r["dataset"] for r in everything})
    splitters = [s for s in SPLITTERS if len({r[s] for r in everything}) > 1]
    fixed = {s: everything[0][s] for s in SPLITTERS if s not in splitters}

    def base(r: dict) -> tuple:
        return (r["method"], r["setting"], r["shots"], r["profile"], r["classifier"])

    exps: dict[tuple, dict] = {}  # (base, config fp) -> experiment
    grouped: dict[tuple, dict[str, list[dict]]] = {}
    expected: dict[tuple, dict[str, set[int]]] = {}
    for r in everything:
        rec = r.get("record") or {}
        exp_key = (base(r), config_fingerprint(rec))
        exps.setdefault(exp_key, experiment(rec))
        grouped.setdefault(exp_key, {})
        expected.setdefault(exp_key, {})
    for r in results:
        grouped[(base(r), config_fingerprint(r.get("record") or {}))].setdefault(r["dataset"], []).append(r)
    for r in planned:
        expected[(base(r), config_fingerprint(r.get("record") or {}))].setdefault(r["dataset"], set()).add(r["seed"])

    variants: dict[tuple, list[tuple]] = {}
    for exp_key in exps:
        variants.setdefault(exp_key[0], []).append(exp_key)
    variant_text: dict[tuple, str] = {}
    for keys in variants.values():
        if len(keys) > 1:
            variant_text.update(zip(keys, differences([exps[k] for k in keys])))

    rows = []
    for exp_key in exps:
        scores = {}
        for d in sorted(set(grouped[exp_key]) | set(expected[exp_key])):
            kept, left_out = _latest(grouped[exp_key].get(d, []))
            scores[d] = Score([r["top1"] for r in kept], [r["seed"] for r in kept],
                              sorted(expected[exp_key].get(d, ())), left_out, cells=[r["cell_key"] for r in kept])
        method, setting, shots, profile, classifier = exp_key[0]
        rows.append(Row(dict(method=method, setting=setting, shots=shots, profile=profile, classifier=classifier),
                        scores, config=exp_key[1], variant=variant_text.get(exp_key, ""), experiment=exps[exp_key]))
    for ref in references:
        if ref["dataset"] in datasets and ("shots" in splitters or ref["shots"] == fixed.get("shots")):
            key = dict(method=ref["method"], setting=ref["setting"], shots=ref["shots"],
                       profile=fixed.get("profile", ""), classifier=fixed.get("classifier", ""))
            rows.append(Row(key, {ref["dataset"]: Score([ref["top1"]], published=True)}, source=ref["source"]))
    rows = _merge_published(rows)

    def order(row: Row):
        blocks = [*BLOCKS, "published"]
        block = blocks.index(row.block) if row.block in blocks else len(blocks)
        # shots before method: rows that compete (Leaderboard.best, the Δ against real-only) stand together
        return (block, row.key["shots"], row.key["profile"], row.key["classifier"], row.key["method"],
                row.key["setting"], row.variant)

    keys = ["method", "setting", *splitters, *(["config"] if variant_text else [])]
    return Leaderboard(datasets, keys, sorted(rows, key=order), fixed, ci)


def from_store(store_path, keys: set[str] | None = None, references: list[dict] = (), ci: bool = False,
               **where) -> Leaderboard:
    """The leaderboard of a results store: its results and planned cells matching column = value filters (and,
    with keys, only those cells: a run shows the board of the cells it asked for)."""
    from ..store import ResultsStore
    from ..store.planned import PlannedCells

    results = ResultsStore(store_path).rows(with_record=True, **where)
    planned = PlannedCells(store_path).rows(**where)
    if keys is not None:
        results = [r for r in results if r["cell_key"] in keys]
        planned = [r for r in planned if r["cell_key"] in keys]
    return build(results, planned, references, ci)


def _merge_published(rows: list[Row]) -> list[Row]:
    """One published row per (method, setting, shots, source), its datasets side by side."""
    out: list[Row] = []
    merged: dict[tuple, Row] = {}
    for row in rows:
        if row.source is None:
            out.append(row)
            continue
        k = (row.key["method"], row.key["setting"], row.key["shots"], row.source)
        if k in merged:
            merged[k].scores.update(row.scores)
        else:
            merged[k] = row
            out.append(row)
    return out
