"""The Ray executor on a local CPU cluster with fake GPUs (so GPU scheduling is exercised): the same store rows
and image bytes as the local executor, a sharded set equal to an unsharded one byte for byte, a worker killed
mid-cell retried to the same result, a full disk stopping the grid (the rerun resumes to the same result), an
infeasible request refused at once, no Ray process left behind."""

import json
import os
import signal
import subprocess
import threading
import time

import pytest

ray = pytest.importorskip("ray")

from datadream_bench.errors import UsageError  # noqa: E402
from datadream_bench.plugins import load_registry  # noqa: E402
from datadream_bench.runner import run_grid  # noqa: E402
from datadream_bench.runner.claims import read_owner  # noqa: E402
from datadream_bench.runner.events import Reporter  # noqa: E402
from datadream_bench.runner.ray_executor import RayExecutor, RayOptions  # noqa: E402
from datadream_bench.store import ResultsStore  # noqa: E402
from datadream_bench.testing import tiny_cells  # noqa: E402

METHODS = ["datadream-cls", "datadream-dset", "zero-shot-sd", "issynth", "disef", "zero-shot-clip", "real-only"]
# zero-shot SD makes 65 images: two blocks, so its set is really split over the two shards.
OVERRIDES = {"zero-shot-sd.images_per_class": 13, "zero-shot-sd.num_inference_steps": 2}
GPU_TASKS = dict(task_gpus=1, classifier_gpus=0.5)  # fake GPUs: scheduling as on a GPU cluster, work on CPU


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the module: 2 CPUs, 2 (fake) GPUs. Afterwards none of its processes is left."""
    # One thread per task, as the local reference runs, whatever OMP_NUM_THREADS the shell running the tests set
    # (workers inherit it, and Ray only fills it in where it is unset).
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, logging_level="warning",
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    session = ray._private.worker._global_node.get_session_dir_path()
    yield
    ray.shutdown()
    deadline = time.time() + 30
    while time.time() < deadline and processes_of(session):
        time.sleep(0.5)
    assert not processes_of(session), "Ray processes left behind"


def processes_of(session: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in ps if session in line or os.path.basename(session) in line]


def cells(work, **request):
    methods = request.pop("methods", METHODS)
    overrides = dict(OVERRIDES) if "zero-shot-sd" in methods else {}
    return tiny_cells(methods, work, load_registry(), overrides=overrides, **request)


def rows(work):
    store = ResultsStore(work / "results.sqlite")
    return {r["cell_key"]: (store.record(r["cell_key"])["metrics"], store.record(r["cell_key"])["artifacts"])
            for r in store.rows()}


def images(work):
    return {p.relative_to(work).as_posix(): p.read_bytes() for p in sorted((work / "generated").rglob("*.png"))}


def manifests(work):
    return {p.relative_to(work).as_posix(): [{k: v for k, v in json.loads(line).items() if k != "filter_seconds"}
                                             for line in p.read_text().splitlines()]
            for p in sorted((work / "generated").rglob("manifest.jsonl"))}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The reference: the same grid by the local executor, with one torch thread as in a 1-CPU Ray task (on CPU,
    the kernels' reduction order follows the thread count, and a pixel can land one grey level apart)."""
    import torch

    work = tmp_path_factory.mktemp("local")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outcome = run_grid(cells(work, settings=["synthetic"]), work)
    finally:
        torch.set_num_threads(threads)
    assert not outcome.failed, [o.error for o in outcome.failed]
    return work


class Counts(Reporter):
    def __init__(self):
        self.seen: dict[str, list[tuple[int, int]]] = {}

    def progress(self, what, done, total):
        self.seen.setdefault(what, []).append((done, total))


def test_every_method_through_ray_gives_the_local_rows_and_images(cluster, local_run, tmp_path):
    grid = cells(tmp_path, settings=["synthetic"])
    counts = Counts()
    outcome = run_grid(grid, tmp_path, counts, executor=RayExecutor(RayOptions(**GPU_TASKS, shard_images=2)))
    assert not outcome.failed, [o.error for o in outcome.failed]
    assert len(outcome.outcomes) == len(METHODS)
    assert rows(tmp_path) == rows(local_run)
    # the sharded sets (zero-shot SD's over three blocks) are the unsharded ones byte for byte
    assert images(tmp_path) == images(local_run) and len(images(tmp_path)) > 65
    assert manifests(tmp_path) == manifests(local_run)
    # the driver alone wrote the store: one row per cell, each recording the command that asked for it
    assert len(ResultsStore(tmp_path / "results.sqlite").rows()) == len(METHODS)
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name or p.name.endswith(".claim")]
    # The driver counted the workers' finished files: every set's images and adapt units (DataDream's 5 + 1 LoRAs,
    # DISEF's 5), never past the total, never going back.
    made = sum(len(records) for records in manifests(tmp_path).values())
    for what, last in (("images, all sets", (made, made)), ("adapt units, all sets", (11, 11))):
        assert counts.seen[what][-1] == last, counts.seen[what]
        assert [d for d, _ in counts.seen[what]] == sorted(d for d, _ in counts.seen[what])
        assert {t for _, t in counts.seen[what]} == {last[1]}


def test_a_worker_killed_mid_cell_is_retried_to_the_same_result(cluster, local_run, tmp_path):
    grid = cells(tmp_path, methods=["zero-shot-sd"], settings=["synthetic"])
    killed = []

    def kill_a_generating_worker():
        # The owner of the first claim on an image block is a worker in the middle of generating: kill it.
        deadline = time.time() + 600
        while time.time() < deadline and not killed:
            for claim in tmp_path.glob("generated/*/*/blocks/*.claim"):
                owner = read_owner(claim)
                if owner and owner.pid > 0 and any(claim.parent.glob("*.jsonl")):
                    os.kill(owner.pid, signal.SIGKILL)
                    killed.append(owner.pid)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_generating_worker)
    killer.start()
    outcome = run_grid(grid, tmp_path, executor=RayExecutor(RayOptions(**GPU_TASKS, max_retries=2)))
    killer.join()
    assert killed, "no worker was caught mid-generation"
    assert outcome.outcomes[0].status == "done", outcome.outcomes[0].error
    assert rows(tmp_path) == {k: v for k, v in rows(local_run).items() if k == grid[0].spec.key()}
    local_images = {k: v for k, v in images(local_run).items() if "/zero-shot-sd/" in k}
    assert images(tmp_path) == local_images


def test_a_full_disk_stops_the_grid_and_the_same_command_resumes_it(cluster, local_run, tmp_path, monkeypatch):
    methods = ["zero-shot-sd", "issynth"]
    grid = cells(tmp_path, methods=methods, settings=["synthetic"])
    # Every worker's 17th image write fails as on a full disk (the variable reaches the workers with each task).
    # The 17th is in a worker's 3rd batch of 8, begun only once its 1st batch is recorded: an image size is then
    # known whichever task fails first, and the message can say what the rest needs.
    monkeypatch.setenv("DD_BENCH_FULL_AT", "generate.write:17")
    outcome = run_grid(grid, tmp_path, executor=RayExecutor(RayOptions(**GPU_TASKS, shard_images=2)))
    assert outcome.stopped and outcome.stopped.startswith(f"disk full: the work dir {tmp_path} has ")
    assert "images still to make need about" in outcome.stopped
    assert outcome.failed and all(o.status == "failed" for o in outcome.outcomes)
    assert "No space left on device" in outcome.failed[0].error
    assert ResultsStore(tmp_path / "results.sqlite").rows() == []
    assert not list(tmp_path.rglob("*.claim")), "a cancelled task kept its claim"
    monkeypatch.delenv("DD_BENCH_FULL_AT")
    resumed = run_grid(grid, tmp_path, executor=RayExecutor(RayOptions(**GPU_TASKS, shard_images=2)))
    assert not resumed.failed and resumed.stopped is None, [o.error for o in resumed.failed]
    keys = {c.spec.key() for c in grid}
    assert rows(tmp_path) == {k: v for k, v in rows(local_run).items() if k in keys}
    assert images(tmp_path) == {k: v for k, v in images(local_run).items()
                                if any(f"/{m}/" in k for m in methods)}


def test_an_infeasible_request_fails_at_once(cluster, tmp_path):
    grid = cells(tmp_path, methods=["real-only"])
    start = time.perf_counter()
    with pytest.raises(UsageError, match=r"no node of the Ray cluster can run an adapt/generation task "
                                         r"\(1 CPU, 4 GPU\); its nodes have: 2 CPU, 2 GPU"):
        run_grid(grid, tmp_path, executor=RayExecutor(RayOptions(task_gpus=4)))
    assert time.perf_counter() - start < 30
