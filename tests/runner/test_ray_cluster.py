"""A grid on an emulated two-node Ray cluster (ray.cluster_utils.Cluster): one fake GPU per node, so the two
generation shards and the classifier tasks are spread over both nodes; nothing of the cluster is left after it."""

import subprocess
import time

import pytest

ray = pytest.importorskip("ray")

from datadream_bench.plugins import load_registry  # noqa: E402
from datadream_bench.runner import run_grid  # noqa: E402
from datadream_bench.runner.ray_executor import RayExecutor, RayOptions  # noqa: E402
from datadream_bench.store import ResultsStore  # noqa: E402
from datadream_bench.testing import tiny_cells  # noqa: E402


def test_a_grid_runs_on_two_nodes(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 1})
    cluster.add_node(num_cpus=1, num_gpus=1)
    try:
        ray.init(address=cluster.address, logging_level="warning")
        session = ray._private.worker._global_node.get_session_dir_path()
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        cells = tiny_cells(["zero-shot-sd", "real-only"], tmp_path, load_registry(),
                           overrides={"images_per_class": 13, "num_inference_steps": 2})
        outcome = run_grid(cells, tmp_path, executor=RayExecutor(RayOptions(task_gpus=1, classifier_gpus=0.5,
                                                                            shard_images=2)))
        assert [o.status for o in outcome.outcomes] == ["done"] * 3, [o.error for o in outcome.outcomes]
        assert len(ResultsStore(tmp_path / "results.sqlite").rows()) == 3
    finally:
        ray.shutdown()
        cluster.shutdown()
    deadline = time.time() + 30
    while time.time() < deadline and left(session):
        time.sleep(0.5)
    assert not left(session), "Ray processes left behind"


def left(session: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in ps if session in line]
