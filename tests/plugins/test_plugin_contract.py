"""Plugins that break the contract are refused when they load (or, for what only running shows, when their hook
hands data back), with an error that names the plugin and says what it must provide; the other plugins still load.
Each case is a small distribution installed into a temporary folder, as `pip install` would lay it out."""

import textwrap

import pytest

from datadream_bench.errors import UsageError
from datadream_bench.plugins import load_registry

HEADER = "from datadream_bench import api\n\n"


def install(root, module: str, source: str, monkeypatch) -> None:
    """A one-module distribution with an entry point in the dd_bench group, on sys.path; only it is loaded."""
    (root / f"{module}.py").write_text(HEADER + textwrap.dedent(source))
    info = root / f"{module}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[dd_bench]\n{module} = {module}\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("DD_BENCH_LOAD_PLUGINS", module)


def plugin_error(module: str) -> str:
    registry = load_registry()
    (info,) = [p for p in registry.plugins if p.name == module]
    assert info.error, f"{module} should have been refused"
    assert module in info.error, "the error must name the plugin"
    return info.error


def test_a_hook_without_the_hookimpl_marker_is_reported(tmp_path, monkeypatch):
    install(tmp_path, "dd_bench_unmarked", '''
        def register_methods(register):
            pass
    ''', monkeypatch)
    error = plugin_error("dd_bench_unmarked")
    assert "register_methods() is not marked with @api.hookimpl" in error


@pytest.mark.parametrize("marked", [True, False])
def test_a_misspelled_hook_is_reported_with_the_right_name(tmp_path, monkeypatch, marked):
    module = f"dd_bench_misspelled_{int(marked)}"
    install(tmp_path, module, f'''
        {"@api.hookimpl" if marked else ""}
        def register_method(register):
            pass
    ''', monkeypatch)
    error = plugin_error(module)
    assert "register_method" in error and "did you mean register_methods" in error


def test_a_plugin_with_no_hook_at_all_is_reported(tmp_path, monkeypatch):
    install(tmp_path, "dd_bench_empty", "VALUE = 1\n", monkeypatch)
    assert "implements none of the dd-bench hooks" in plugin_error("dd_bench_empty")


def test_a_method_without_a_name_is_refused(tmp_path, monkeypatch):
    install(tmp_path, "dd_bench_nameless", '''
        class Nameless(api.Method):
            class Config(api.MethodConfig):
                images_per_class: int = api.Field(2, description="images per class")

            def sample(self, ctx, sampler, batch):
                return sampler.text_to_image(batch, num_inference_steps=2, guidance_scale=1.0)

        @api.hookimpl
        def register_methods(register):
            register(Nameless())
    ''', monkeypatch)
    error = plugin_error("dd_bench_nameless")
    assert "Nameless" in error and "has no name" in error and 'name = "my-method"' in error


def test_a_default_plan_without_images_per_class_is_refused_at_load_and_named_at_plan_time(tmp_path, monkeypatch,
                                                                                       forbid_model_loads):
    install(tmp_path, "dd_bench_noimages", '''
        class NoImages(api.Method):
            name = "no-images"

            class Config(api.MethodConfig):
                steps: int = api.Field(2, description="sampling steps")

            def sample(self, ctx, sampler, batch):
                return sampler.text_to_image(batch, num_inference_steps=ctx.config.steps, guidance_scale=1.0)

        @api.hookimpl
        def register_methods(register):
            register(NoImages())
    ''', monkeypatch)
    error = plugin_error("dd_bench_noimages")
    assert "default plan()" in error and "images_per_class" in error
    registry = load_registry()
    with pytest.raises(UsageError, match="dd_bench_noimages.*images_per_class"):
        registry.get("methods", "no-images")
    from datadream_bench.testing import tiny_cells

    with pytest.raises(UsageError, match="installed but not usable.*images_per_class"):
        tiny_cells(["no-images"], tmp_path / "work", registry)


def test_sample_with_the_old_signature_is_refused(tmp_path, monkeypatch):
    install(tmp_path, "dd_bench_oldsample", '''
        class Old(api.Method):
            name = "old-sample"

            class Config(api.MethodConfig):
                images_per_class: int = api.Field(2, description="images per class")

            def sample(self, sampler, batch):
                return []

        @api.hookimpl
        def register_methods(register):
            register(Old())
    ''', monkeypatch)
    assert "must take (ctx, sampler, batch)" in plugin_error("dd_bench_oldsample")


def test_a_profile_default_the_config_does_not_have_is_refused(tmp_path, monkeypatch):
    install(tmp_path, "dd_bench_badprofile", '''
        class BadProfile(api.Method):
            name = "bad-profile"
            profile_defaults = {"tiny": {"images_per_clas": 3}}

            class Config(api.MethodConfig):
                images_per_class: int = api.Field(2, description="images per class")

            def sample(self, ctx, sampler, batch):
                return []

        @api.hookimpl
        def register_methods(register):
            register(BadProfile())
    ''', monkeypatch)
    assert "profile_defaults['tiny'] sets images_per_clas" in plugin_error("dd_bench_badprofile")


def test_a_classifier_state_that_is_not_tensors_fails_naming_the_plugin(tmp_path, monkeypatch):
    install(tmp_path, "dd_bench_numpystate", '''
        import numpy as np

        class NumpyProbe(api.Classifier):
            name = "numpy-probe"

            def train(self, job):
                return {"w": np.zeros((2, 2))}

            def evaluate(self, job, state, split="test"):
                return {"top1": 0.0, "n": len(job.dataset.split(split))}

        @api.hookimpl
        def register_classifiers(register):
            register(NumpyProbe())
    ''', monkeypatch)
    from datadream_bench.testing import run_tiny

    outcome = run_tiny(["real-only"], tmp_path / "work", classifier="numpy-probe")
    (failed,) = outcome.failed
    assert "dd_bench_numpystate" in failed.error and "'w' is a numpy.ndarray" in failed.error
    assert "torch.Tensor" in failed.error


def test_one_bad_plugin_leaves_the_others_loaded(tmp_path, monkeypatch):
    install(tmp_path, "dd_bench_unmarked2", '''
        def register_methods(register):
            pass
    ''', monkeypatch)
    monkeypatch.setenv("DD_BENCH_LOAD_PLUGINS", "dd_bench_unmarked2,zero_shot_sd")
    registry = load_registry()
    assert "zero-shot-sd" in registry.methods
    assert {p.name for p in registry.plugins if p.error} == {"dd_bench_unmarked2"}
