"""The runner: cells keyed by their inputs, nothing redone, nothing stale, every result row says what made it."""

import pytest

from datadream_bench.errors import UsageError
from datadream_bench.models import loading
from datadream_bench.plugins import load_registry
from datadream_bench.runner import plan_grid, run_grid
from datadream_bench.runner.cell import artifact_keys
from datadream_bench.spec import RunRequest
from datadream_bench.store import ResultsStore
from datadream_bench.testing import tiny_cells


@pytest.fixture
def registry(example_plugin):
    return load_registry()


def test_grid_runs_then_a_rerun_does_no_work(registry, tmp_path, request):
    cells = tiny_cells(["example-sd", "zero-shot-clip"], tmp_path, registry)
    assert [(c.spec.method, c.spec.setting) for c in cells] == [
        ("example-sd", "synthetic"), ("example-sd", "synthetic+real"), ("zero-shot-clip", "none")]
    first = run_grid(cells, tmp_path)
    assert [o.status for o in first.outcomes] == ["done"] * 3, [o.error for o in first.outcomes]

    store = ResultsStore(tmp_path / "results.sqlite")
    synthetic, both = (store.record(c.spec.key()) for c in cells[:2])
    # the second setting trains on the first one's generated set: not one image made again
    assert synthetic["generation"]["images"] == 15 and both["generation"]["reused"] == 15
    assert both["generation"]["images"] == 0
    assert synthetic["artifacts"]["generate"] == both["artifacts"]["generate"]
    for key in ("dataset", "fewshot", "generate", "classifier"):
        assert synthetic["artifacts"][key]
    assert synthetic["environment"]["packages"]["torch"] and synthetic["provenance"]["method_version"] == "0.3.0"
    assert set(synthetic["timings_s"]) >= {"fewshot", "adapt", "generate", "train", "evaluate", "total"}
    assert synthetic["spec"]["method_config"] == {"images_per_class": 3, "steps": 3, "guidance": 2.0}
    assert synthetic["spec"]["runtime"]["batch_size"] == 10

    loading._LOADED.clear()  # the pipeline loaded above must not be reused from memory either
    request.getfixturevalue("forbid_model_loads")
    again = run_grid(tiny_cells(["example-sd", "zero-shot-clip"], tmp_path, registry), tmp_path)
    assert [o.status for o in again.outcomes] == ["skipped"] * 3


def test_a_changed_setting_never_meets_a_stale_artifact(registry, tmp_path):
    base = tiny_cells(["example-sd"], tmp_path, registry, settings=["synthetic"])[0]
    more = tiny_cells(["example-sd"], tmp_path, registry, settings=["synthetic"],
                      overrides={"images_per_class": 4})[0]
    batch = tiny_cells(["example-sd"], tmp_path, registry, settings=["synthetic"], batch_size=2)[0]
    other_seed = tiny_cells(["example-sd"], tmp_path, registry, settings=["synthetic"], seeds=[1])[0]
    assert base.spec.key() != more.spec.key() != other_seed.spec.key()
    assert artifact_keys(base)["generate"] != artifact_keys(more)["generate"]
    assert artifact_keys(base)["fewshot"] != artifact_keys(other_seed)["fewshot"]
    # the batch size changes speed, never images: same cell, same artifacts
    assert batch.spec.key() == base.spec.key() and artifact_keys(batch) == artifact_keys(base)


def test_a_method_that_never_reads_the_shots_makes_one_set_for_every_shot_count(registry, tmp_path):
    zero_shot = tiny_cells(["zero-shot-sd"], tmp_path, registry, settings=["synthetic"], shots=[1, 2])
    other_seed = tiny_cells(["zero-shot-sd"], tmp_path, registry, settings=["synthetic"], seeds=[1])[0]
    reads = tiny_cells(["example-sd"], tmp_path, registry, settings=["synthetic"], shots=[1, 2])
    keys = [artifact_keys(c) for c in zero_shot]
    assert keys[0]["generate"] == keys[1]["generate"] != artifact_keys(other_seed)["generate"]
    assert keys[0]["fewshot"] != keys[1]["fewshot"] and keys[0]["classifier"] != keys[1]["classifier"]
    assert artifact_keys(reads[0])["generate"] != artifact_keys(reads[1])["generate"]  # a method that reads them

    outcome = run_grid(zero_shot, tmp_path)
    assert [o.status for o in outcome.outcomes] == ["done", "done"], [o.error for o in outcome.outcomes]
    store = ResultsStore(tmp_path / "results.sqlite")
    one, two = (store.record(c.spec.key()) for c in zero_shot)
    assert one["generation"]["images"] > 0 and two["generation"]["images"] == 0
    assert two["generation"]["reused"] == one["generation"]["images"]
    # the set's quality is kept per draw: memorisation is measured against each cell's own shots
    from datadream_bench.quality.compute import quality_path
    from datadream_bench.runner.workdir import WorkDir

    paths = {quality_path(WorkDir(tmp_path), r["artifacts"], r["spec"]["inputs"]["clip"]) for r in (one, two)}
    assert len(paths) == 2


def test_one_failing_cell_does_not_stop_the_grid(registry, tmp_path, monkeypatch):
    method = registry.methods["example-sd"]

    def broken(ctx, sampler, batch):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(method, "sample", broken)
    outcome = run_grid(tiny_cells(["example-sd", "zero-shot-clip"], tmp_path, registry), tmp_path)
    assert [o.status for o in outcome.outcomes] == ["failed", "failed", "done"]
    assert "out of memory" in outcome.failed[0].error


def test_usage_errors_come_before_any_model_is_loaded(registry, tmp_path, forbid_model_loads):
    cases = [
        (dict(methods=["nope"]), "unknown method 'nope'; valid methods: .*datadream-cls"),
        (dict(methods=["example-sd"], overrides={"epochs": 3}), "no selected method has a setting 'epochs'"),
        (dict(methods=["example-sd"], overrides={"steps": 0}), "steps: Input should be greater"),
        (dict(methods=["example-sd"], overrides={"classifier.nope": 1}), "clip-lora: unknown setting"),
        (dict(methods=["example-sd"], shots=[500]), "class .digit zero. has 71"),
        (dict(methods=["example-sd"], settings=["real"]), "none of the requested settings"),
        (dict(methods=["example-sd"], settings=["fake"]), "unknown setting"),
        (dict(methods=["example-sd"], sd_model=str(tmp_path / "no-such-model")), "not found. Looked in"),
        (dict(methods=["example-sd"], datasets=["eurosat"]), "needs --data-root"),
    ]
    for fields, message in cases:
        with pytest.raises(UsageError, match=message):
            plan_grid(RunRequest(profile="tiny", work_dir=tmp_path, **fields), registry)


def test_a_finished_generated_set_loads_no_pipeline(registry, tmp_path, monkeypatch):
    import diffusers

    synthetic, both = tiny_cells(["example-sd"], tmp_path, registry)
    assert run_grid([synthetic], tmp_path).outcomes[0].status == "done"
    loading._LOADED.clear()

    def refuse(*args, **kwargs):
        raise AssertionError("the pipeline was loaded although every image exists")

    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "from_pretrained", refuse)
    outcome = run_grid([both], tmp_path).outcomes[0]
    assert outcome.status == "done", outcome.error
    record = ResultsStore(tmp_path / "results.sqlite").record(both.spec.key())
    assert record["generation"]["reused"] == 15 and record["generation"]["images"] == 0


def test_dataset_options_naming_files_are_made_absolute(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from datadream_bench.runner.grid import data_options, dataset_extra

    monkeypatch.chdir(tmp_path)
    request = SimpleNamespace(dataset_options={"eurosat": {"split_file": "splits/s.json", "source": "coop"}},
                              decode="all", skip_bad=False, max_bad=0.01)
    extra = dataset_extra(request, "eurosat")
    assert extra == {"split_file": str(tmp_path / "splits" / "s.json"), "source": "coop"}
    # what a Ray worker gets to read the dataset again, from whatever directory it runs in
    assert data_options(request, "eurosat")["options"] == extra
    assert request.dataset_options["eurosat"]["split_file"] == "splits/s.json"  # the request is left as given
