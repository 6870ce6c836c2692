"""The adapt stage at scale: one unit at a time, each saved as it finishes (tensors as safetensors), progress per
unit, and a run killed mid-adapt resumes without redoing any finished unit."""

import pytest
import torch

from datadream_bench import api
from datadream_bench.runner.stages import adapt


class PerShot(api.Method):
    """One unit per real image; each adaptation a LoRA-free bundle of a token, a tensor and data."""

    name = "per-shot"

    class Config(api.MethodConfig):
        images_per_class: int = api.Field(1, description="images per class")

    def __init__(self, fail_at=None):
        self.done, self.fail_at = [], fail_at

    def adapt_units(self, ctx):
        return ctx.shot_units()

    def adapt(self, ctx, unit):
        if unit == self.fail_at:
            self.fail_at = None
            raise KeyboardInterrupt("killed mid-adapt")
        label, shot = ctx.shot_of_unit(unit)
        self.done.append(unit)
        return api.Adaptation(tokens={f"<{unit}>": torch.full((4,), float(shot))},
                              tensors={"mean": torch.tensor([label, shot], dtype=torch.float32)},
                              data={"shot": ctx.fewshot.shots[label][shot].path})

    def sample(self, ctx, sampler, batch):
        raise AssertionError("not called here")


def test_a_killed_adapt_resumes_without_redoing_any_unit(make_ctx, tmp_path):
    method = PerShot(fail_at="class-0002-shot-0001")
    ctx = make_ctx(method, shots=2)
    units = ctx.shot_units()
    assert len(units) == 2 * len(ctx.dataset.classes)
    with pytest.raises(KeyboardInterrupt):
        adapt(method, ctx, tmp_path)
    finished = list(method.done)
    assert finished == units[: units.index("class-0002-shot-0001")]

    events = []
    again = make_ctx(method, shots=2, progress=lambda *e: events.append(e))
    _, made = adapt(method, again, tmp_path)
    assert made == len(units) - len(finished)
    assert sorted(method.done) == sorted(units) and len(method.done) == len(set(method.done)), "a unit done twice"
    # progress names each unit as it starts, then the total
    assert [e for e in events if e[0] == "adapt"][-1] == ("adapt", len(units), len(units))
    assert len([e for e in events if e[0] == "adapt"]) == made + 1
    for unit in units:
        label, shot = again.shot_of_unit(unit)
        got = again.adaptations[unit]
        assert torch.equal(got.tensors["mean"], torch.tensor([label, shot], dtype=torch.float32))
        assert torch.equal(got.tokens[f"<{unit}>"], torch.full((4,), float(shot)))
        assert got.data["shot"] == again.fewshot.shots[label][shot].path

    third = make_ctx(method, shots=2)
    _, made = adapt(method, third, tmp_path)
    assert made == 0 and len(method.done) == len(units)


def test_shot_units_name_each_real_image(make_ctx):
    ctx = make_ctx(PerShot(), shots=3)
    assert ctx.shot_units()[:4] == ["class-0000-shot-0000", "class-0000-shot-0001", "class-0000-shot-0002",
                                    "class-0001-shot-0000"]
    assert ctx.shot_of_unit("class-0001-shot-0002") == (1, 2)
    with pytest.raises(api.UsageError, match="class-0009-shot-0000"):
        ctx.shot_of_unit("class-0009-shot-0000")
