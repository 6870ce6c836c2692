"""A generated set in the work dir, made by any number of processes at once without doing an image twice.

The method's plan (its image requests, in id order) is cut into blocks of BLOCK consecutive requests. A block is
the unit of claims, of manifest pieces and of shards: whoever holds a block's claim makes its missing images into
the block's own manifest piece (blocks/<start>.jsonl); everyone else makes other blocks meanwhile, and then waits
for it. Batches never cross a block boundary, so the same images come out however the blocks are spread over
processes (an unsharded run and a sharded one give the same bytes). Once every block is finished, the pieces are
merged in plan order into manifest.jsonl, the file the classifier reads.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..artifacts import sweep_temps
from ..engine.generate import GenerationReport, filter_summary, generate
from ..engine.manifest import MANIFEST, REJECTIONS, read_manifest, read_rejections, records, write_lines_atomic
from ..method import ImageRequest, Method
from .claims import claim_or_wait, try_claim

log = logging.getLogger("dd_bench")

# Images per block. Small enough that a few workers share a class's images and a killed worker loses little;
# a multiple of the usual batch sizes (8, 16, 32, 64) so that blocks cut no batch short.
BLOCK = 64


@dataclass(frozen=True)
class Block:
    start: int
    requests: tuple[ImageRequest, ...]

    @property
    def name(self) -> str:
        return f"{self.start:08d}"


@dataclass
class Engine:
    """What making images needs, built on first use (a finished set loads no model)."""

    sampler: object
    load_adapter: Callable
    image_filter: object | None
    candidate_seed: Callable
    batch_size: int
    class_names: tuple[str, ...] | None = None
    path_label: Callable[[str], str] = str  # how an init image's path is recorded in the manifest
    ctx: object = None  # the cell's CellContext, handed to the method's sample()


class GeneratedSet:
    def __init__(self, folder: Path, requests: list[ImageRequest], block: int = BLOCK):
        self.folder, self.requests = Path(folder), list(requests)
        self.blocks = [Block(i, tuple(self.requests[i:i + block])) for i in range(0, len(self.requests), block)]
        self.pieces = self.folder / "blocks"
        self.corrupt: list[str] = []  # "<path>: <problem>" of every unusable file found (reported, made again)
        self._verdicts: dict = {}  # (file, size, mtime, digest) -> problem: each unchanged file is hashed once
        self._main: tuple | None = None  # (stat of manifest.jsonl, its verified records)
        self.engine: Engine | None = None  # what make() built, if it had images to make

    # -- reading -------------------------------------------------------------------------------------------------
    def _read(self, path: Path) -> dict[str, dict]:
        found: list[str] = []
        out = read_manifest(path, cache=self._verdicts, report=found, root=self.folder, quiet=set(self.corrupt))
        self.corrupt.extend(p for p in found if p not in self.corrupt)
        return out

    def main_records(self) -> dict[str, dict]:
        path = self.folder / MANIFEST
        try:
            st = path.stat()
            sig = (st.st_size, st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            return {}
        if self._main is None or self._main[0] != sig:
            self._main = (sig, self._read(path))
        return self._main[1]

    def piece(self, block: Block) -> Path:
        return self.pieces / f"{block.name}.jsonl"

    def piece_rejections(self, block: Block) -> Path:
        return self.pieces / f"{block.name}.{REJECTIONS}"

    def claim_path(self, block: Block) -> Path:
        return self.pieces / f"{block.name}.claim"

    def block_state(self, block: Block) -> tuple[dict, dict]:
        """(finished, rejected) records of one block's ids."""
        piece = self._read(self.piece(block))  # the piece first: a merge in between is then seen in the manifest
        done = {**self.main_records(), **piece}
        rejected = {**read_rejections(self.folder / REJECTIONS), **read_rejections(self.piece_rejections(block))}
        ids = {r.id for r in block.requests}
        return ({i: rec for i, rec in done.items() if i in ids}, {i: r for i, r in rejected.items() if i in ids})

    def block_done(self, block: Block) -> bool:
        done, _ = self.block_state(block)
        return all(r.id in done for r in block.requests)

    def state(self) -> tuple[dict, dict]:
        """(finished, rejected) over the whole set: every piece, then the merged manifest."""
        done: dict[str, dict] = {}
        rejected: dict[str, dict] = {}
        if self.pieces.is_dir():
            for p in sorted(self.pieces.glob(f"*.{REJECTIONS}")):
                rejected.update(read_rejections(p))
            for p in sorted(self.pieces.glob("*.jsonl")):
                if not p.name.endswith(REJECTIONS):
                    done.update(self._read(p))
        main = self.main_records()
        merged_rejected = read_rejections(self.folder / REJECTIONS)
        return {**main, **done}, {**merged_rejected, **rejected}

    def missing(self, done: dict) -> list[str]:
        return [r.id for r in self.requests if r.id not in done]

    # -- making --------------------------------------------------------------------------------------------------
    def make(self, engine_factory: Callable[[], Engine], method: Method, blocks: list[Block] | None = None,
             progress: Callable[[str, int, int], None] = lambda what, done, total: None) -> GenerationReport:
        """Make the missing images of `blocks` (default: all). Blocks another process holds are done last: by
        then they are usually finished; else this process waits for them, or takes over from a dead owner."""
        todo = list(self.blocks if blocks is None else blocks)
        total = sum(len(b.requests) for b in todo)
        report = GenerationReport()
        start = time.perf_counter()
        engine: Engine | None = None
        made = 0

        def run(block: Block) -> None:
            nonlocal engine, made
            done, rejected = self.block_state(block)
            if all(r.id in done for r in block.requests):
                return
            if engine is None:
                engine = engine_factory()
                for folder in (self.folder, self.pieces, *sorted((self.folder / "images").glob("*"))):
                    sweep_temps(folder)
            part = generate(method, engine.sampler, list(block.requests), self.folder,
                            batch_size=engine.batch_size, load_adapter=engine.load_adapter,
                            image_filter=engine.image_filter, candidate_seed=engine.candidate_seed,
                            class_names=engine.class_names, manifest=self.piece(block),
                            rejections=self.piece_rejections(block), done=done, rejected=rejected,
                            path_label=engine.path_label, ctx=engine.ctx,
                            progress=lambda what, n, m: progress("generate", made + n, total))
            report.images += part.images
            report.adapter_seconds += part.adapter_seconds
            for label, n in part.per_class.items():
                report.per_class[label] = report.per_class.get(label, 0) + n
            made += len(block.requests)
            progress("generate", made, total)

        deferred = []
        for block in todo:
            if self.block_done(block):
                made += len(block.requests)
                continue
            claim = try_claim(self.claim_path(block), what=f"images {block.name} of {self.folder}")
            if claim is None:
                deferred.append(block)
                continue
            with claim:
                run(block)
        for block in deferred:
            claim = claim_or_wait(self.claim_path(block), lambda b=block: self.block_done(b),
                                  what=f"images {block.name} of {self.folder}")
            if claim is None:
                made += len(block.requests)
                continue
            with claim:
                run(block)
        progress("generate", total, total)
        report.reused = total - report.images
        report.seconds = time.perf_counter() - start
        self.engine = engine
        report.repaired = list(self.corrupt)
        return report

    def finish(self) -> dict[str, dict]:
        """Merge the pieces into manifest.jsonl (plan order, one line per image) once every image is finished;
        returns the finished records. Raises when an image is still missing."""
        done, rejected = self.state()
        missing = self.missing(done)
        if missing:
            raise RuntimeError(f"generation finished with {len(missing)} planned images missing, e.g. {missing[:3]}")
        main = self.main_records()
        if self._merged(main):
            return done

        def merged() -> bool:
            return self._merged(self.main_records())

        claim = claim_or_wait(self.folder / "manifest.claim", merged, what=f"the manifest of {self.folder}")
        if claim is None:
            return self.main_records()
        with claim:
            done, rejected = self.state()
            order = {r.id: i for i, r in enumerate(self.requests)}
            write_lines_atomic(self.folder / MANIFEST, [done[r.id] for r in self.requests])
            rows = sorted((rec for attempts in rejected.values() for rec in attempts.values() if rec["id"] in order),
                          key=lambda rec: (order[rec["id"]], rec["attempt"]))
            if rows or (self.folder / REJECTIONS).exists():
                write_lines_atomic(self.folder / REJECTIONS, rows)
            if self.pieces.is_dir():
                for p in self.pieces.glob("*.jsonl"):
                    p.unlink(missing_ok=True)
        return self.main_records()

    def _merged(self, main: dict) -> bool:
        pieces = self.pieces.is_dir() and any(self.pieces.glob("*.jsonl"))
        return not pieces and not self.missing(main) and len(main) == len(self.requests)

    def filter_report(self, image_filter, class_names) -> dict:
        done, rejected = self.state()
        return filter_summary(self.folder, self.requests, image_filter, class_names, done=done, rejected=rejected)


@dataclass
class SetCount:
    """One generated set of a grid, as found on disk: images planned, and the records of those made so far."""

    folder: Path
    planned: int | None  # None: the method's cost() could not say
    done: dict[str, dict]


def count_sets(cells, workdir) -> list[SetCount]:
    """The distinct generated sets of these cells, read from the work dir without loading any model.

    The planned count is the method's own (Method.cost, as `dd-bench plan` counts it); a set shared by two settings
    or shot counts is listed once. What is made is read from the set's manifest and its block pieces (a set still
    being made by other processes)."""
    from .cell import artifact_keys

    out, seen = [], set()
    for cell in cells:
        keys = artifact_keys(cell)
        if "generate" not in keys or keys["generate"] in seen:
            continue
        seen.add(keys["generate"])
        folder = workdir.generated(cell.spec.method, keys["generate"])
        done = {}
        for path in _record_files(folder):
            done.update((rec["id"], rec) for rec in records(path) if "id" in rec and "file" in rec)
        out.append(SetCount(folder, planned_images(cell), done))
    return out


def planned_images(cell) -> int | None:
    """The images of a cell's generated set, as its method's cost() counts them for `dd-bench plan`; None when a
    plugin's cost() fails (that costs the plugin a count in progress and disk checks, never the run)."""
    from ..perf.plan import method_cost

    try:
        return method_cost(cell.method, cell.method_config, len(cell.dataset.classes), cell.spec.shots).images
    except Exception:  # noqa: BLE001
        return None


def recorded_images(folder: Path) -> int:
    """How many images of a set are recorded: the complete lines of its manifest and block pieces. A cheap count for
    progress, read while other processes write; a piece being merged can be counted twice, so callers cap it."""
    count = 0
    for path in _record_files(Path(folder)):
        try:
            count += path.read_bytes().count(b"\n")
        except FileNotFoundError:  # merged away since the listing
            continue
    return count


def _record_files(folder: Path) -> list[Path]:
    """A set's image records: the merged manifest and the block pieces (not the filter's rejection logs)."""
    pieces = sorted(p for p in (folder / "blocks").glob("*.jsonl") if not p.name.endswith(REJECTIONS))
    return [folder / MANIFEST, *pieces]
