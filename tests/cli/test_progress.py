"""Progress on stderr: rate and ETA on every bar, a grid bar, plain lines without a terminal, a fresh bar when a
count starts over (the next class's LoRA steps), and a line on Ctrl-C."""

import io

import pytest
from rich.console import Console

from datadream_bench.cli import progress
from datadream_bench.runner.events import CellOutcome
from datadream_bench.spec import CellSpec


def spec(seed=0):
    return CellSpec(method="datadream-cls", dataset="demo-digits", shots=4, seed=seed, setting="synthetic",
                    classifier="clip-lora", profile="demo", sd_model="sd", clip_model="clip", method_config={},
                    classifier_config={})


@pytest.fixture
def stderr(monkeypatch):
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    monkeypatch.setattr(progress, "err", console)
    return console


@pytest.fixture
def log(monkeypatch):
    console = Console(file=io.StringIO(), force_terminal=False, width=200)  # a Slurm or nohup log
    monkeypatch.setattr(progress, "err", console)
    return console


def test_count_rate_and_eta():
    c = progress.Count("train", total=100, done=10, base=10, started=0.0)
    c.done = 30
    assert c.rate(now=10.0) == pytest.approx(2.0)  # 20 steps in 10 s: the 10 found done do not count
    assert c.eta(now=10.0) == pytest.approx(35.0)
    assert progress.clock(3725) == "1:02:05" and progress.clock(None) == "-:--:--"
    c.update(100)  # finished: rate and time stop, however long the bar stays on screen
    assert c.ended is not None and c.elapsed(now=c.ended + 60) == c.elapsed(now=c.ended + 5)
    assert c.rate(now=c.ended + 60) == c.rate(now=c.ended + 5)


def test_lora_steps_start_a_fresh_bar_for_each_unit(stderr):
    with progress.RichReporter(live=True) as r:
        r.cell_started(0, 2, spec())
        r.progress("adapt", 0, 5)
        for step in range(1, 6):
            r.progress("LoRA steps", step, 5)
        first = r.bars.tasks[-1]
        assert first.finished and first.description.endswith("(unit 1/5)")
        r.progress("adapt", 1, 5)
        r.progress("LoRA steps", 1, 5)
        second = r.bars.tasks[-1]
        assert second.id != first.id and not second.finished and second.completed == 1
        assert second.description.endswith("(unit 2/5)")
        assert first.id not in {t.id for t in r.bars.tasks}  # the finished bar is gone, not frozen beside it
        columns = [str(col.render(second)) for col in r.bars.columns[-2:]]
        assert columns[0].endswith("/s") or columns[0].endswith("each") or columns[0] == "-/s"
        assert columns[1].startswith("ETA ")


def test_grid_bar_counts_cells_that_run(stderr):
    with progress.RichReporter(live=True) as r:
        r.cell_started(0, 3, spec(0))
        r.cell_finished(CellOutcome(spec(0), "skipped"))
        r.cell_started(1, 3, spec(1))
        r.cell_finished(CellOutcome(spec(1), "done", top1=50.0, seconds=3.0))
        assert (r.grid.done, r.grid.total) == (1, 2)  # the skipped cell left the count
        grid_task = next(t for t in r.bars.tasks if t.id == r.grid_task)
        assert grid_task.total == 2 and "1 already done" in grid_task.description
    out = stderr.file.getvalue()
    assert "grid 1/2 cells to run, ETA" in out


def test_plain_lines_without_a_terminal(log):
    r = progress.RichReporter(log_every=0.0)
    assert not r.live
    with r:
        r.cell_started(0, 1, spec())
        r.progress("generate", 0, 40)
        r.progress("generate", 20, 40)
    out = log.file.getvalue()
    assert "cell 1/1 datadream-cls/demo-digits/4-shot/seed 0/synthetic" in out
    assert "generate 20/40 (" in out and "ETA" in out and "grid cells 0/1" in out
    assert "\x1b" not in out  # no live display, no colour codes in a log


def test_ctrl_c_says_what_was_kept_and_how_to_resume(log):
    with pytest.raises(KeyboardInterrupt):
        with progress.RichReporter() as r:
            r.cell_started(0, 2, spec(0))
            r.cell_finished(CellOutcome(spec(0), "done", top1=50.0, seconds=3.0))
            r.cell_started(1, 2, spec(1))
            r.progress("generate", 12, 40)
            raise KeyboardInterrupt
    out = " ".join(log.file.getvalue().split())
    assert "interrupted: 1 cell(s) finished in this run are in the store" in out
    assert "datadream-cls/demo-digits/4-shot/seed 1/synthetic" in out and "generate 12/40" in out
    assert "Run the same command again to resume" in out


def test_cells_running_at_once_are_named_as_they_finish(log):
    # On Ray every cell starts before any finishes: a bare "done" would not say whose it is.
    with pytest.raises(KeyboardInterrupt):
        with progress.RichReporter() as r:
            for seed in range(3):
                r.cell_started(seed, 3, spec(seed))
            r.cell_finished(CellOutcome(spec(1), "done", top1=50.0, seconds=3.0))
            r.cell_finished(CellOutcome(spec(2), "failed", error="boom"))
            r.progress("images, all sets", 10, 40)
            raise KeyboardInterrupt
    out = log.file.getvalue()
    assert "datadream-cls/demo-digits/4-shot/seed 1/synthetic: done: top-1 50.0%" in out
    assert "seed 2/synthetic: failed: boom" in out
    assert "of the 1 cells" not in out and "of datadream-cls" in out  # one left running: named as in a local run


def test_a_cell_finishing_right_after_its_own_line_is_not_named_again(log):
    with progress.RichReporter() as r:
        r.cell_started(0, 1, spec())
        r.cell_finished(CellOutcome(spec(), "done", top1=50.0, seconds=3.0))
    assert "\n  done: top-1 50.0% in 3s" in log.file.getvalue()
