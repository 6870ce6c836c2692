"""The leaderboard: one row per experiment, a seed counted once, missing seeds marked against the planned grid,
mean ± sample std, averages only over complete rows, reference rows last, and every output format."""

import csv
import io
import json

import pytest

from datadream_bench import leaderboard
from datadream_bench.errors import UsageError
from datadream_bench.report.references import read_references


def row(method, dataset, seed, top1, setting="synthetic", shots=16, profile="paper", config=None, data="d0",
        finished="2026-01-01T00:00:00", clip="c0"):
    spec = dict(method=method, dataset=dataset, seed=seed, setting=setting, shots=shots, profile=profile,
                classifier="clip-lora", method_config=config or {"lr": 1e-4}, classifier_config={"epochs": 60},
                precision="fp32", inputs={"dataset": f"{dataset}-{data}", "clip": clip})
    return dict(method=method, dataset=dataset, seed=seed, top1=top1, setting=setting, shots=shots, profile=profile,
                classifier="clip-lora", finished=finished, cell_key=f"{method}-{dataset}-{seed}-{setting}-{top1}",
                record={"spec": spec, "provenance": {"method_version": "0.1.0", "dataset": {"protocol": "standard"}}})


ROWS = [row("datadream-cls", "eurosat", s, v) for s, v in enumerate([90.0, 92.0, 94.0])] + [
    row("datadream-cls", "dtd", 0, 70.0),
    row("zero-shot-sd", "eurosat", 0, 80.0),
    row("real-only", "eurosat", 0, 85.0, setting="real"),
    row("zero-shot-clip", "eurosat", 0, 50.0, setting="none"),
    row("zero-shot-clip", "dtd", 0, 40.0, setting="none"),
]


def by_method(board, method, setting="synthetic"):
    found = [r for r in board.rows if r.key["method"] == method and r.key["setting"] == setting]
    assert len(found) == 1, found
    return found[0]


def test_scores_and_average():
    board = leaderboard.build(ROWS)
    assert board.datasets == ["dtd", "eurosat"]
    cls = by_method(board, "datadream-cls")
    assert cls.scores["eurosat"].mean == pytest.approx(92.0) and cls.scores["eurosat"].std == pytest.approx(2.0)
    assert cls.scores["eurosat"].text() == "92.0 ± 2.0 (3)"
    assert board.average(cls) == pytest.approx(81.0)
    assert board.average(by_method(board, "zero-shot-sd")) is None  # dtd missing: no average
    assert [r.key["method"] for r in board.rows][-1] == "zero-shot-clip"  # reference rows last
    assert board.fixed == {"shots": 16, "profile": "paper", "classifier": "clip-lora"}
    assert board.delta(cls, "eurosat") == pytest.approx(92.0 - 85.0)  # against real-only, same shots and CLIP
    assert board.best(cls, "eurosat") and not board.best(by_method(board, "zero-shot-sd"), "eurosat")


def test_the_best_row_is_chosen_among_rows_of_the_same_shots():
    rows = ROWS + [row("zero-shot-sd", "eurosat", 0, 95.0, shots=32), row("real-only", "eurosat", 0, 90.0,
                                                                          setting="real", shots=32)]
    board = leaderboard.build(rows)
    at = {(r.key["method"], r.key["shots"]): r for r in board.rows if r.key["setting"] == "synthetic"}
    assert board.best(at["datadream-cls", 16], "eurosat")  # 92.0: the best 16-shot row, though a 32-shot row has 95
    assert board.best(at["zero-shot-sd", 32], "eurosat") is False  # alone at 32 shots: nothing to be best among
    assert board.delta(at["zero-shot-sd", 32], "eurosat") == pytest.approx(95.0 - 90.0)
    # rows that compete stand together: by shots first, then method
    assert [(r.key["shots"], r.key["method"]) for r in board.rows if r.block == "synthetic"] == [
        (16, "datadream-cls"), (16, "zero-shot-sd"), (32, "zero-shot-sd")]


def test_one_seed_shows_no_spread_and_ci_is_wider_than_std():
    board = leaderboard.build(ROWS)
    assert by_method(board, "datadream-cls").scores["dtd"].text() == "70.0 (1)"  # not "70.0 ± 0.0 (1)"
    assert "sample std (n−1)" in leaderboard.caption(board)
    ci = leaderboard.build(ROWS, ci=True)
    score = by_method(ci, "datadream-cls").scores["eurosat"]
    assert score.ci95 == pytest.approx(4.303 * 2.0 / 3 ** 0.5, rel=1e-3)  # t(0.975, 2) * s / sqrt(n)
    assert score.text(ci=True) == "92.0 ± 5.0 (3)" and "95% confidence interval" in leaderboard.caption(ci)


def test_two_configs_of_one_method_give_two_rows_that_say_what_differs():
    rows = ROWS + [row("datadream-cls", "eurosat", s, v, config={"lr": 3e-4}) for s, v in [(0, 60.0), (1, 62.0)]]
    board = leaderboard.build(rows)
    cls = [r for r in board.rows if r.key["method"] == "datadream-cls"]
    assert len(cls) == 2 and len({r.config for r in cls}) == 2
    assert sorted(r.scores["eurosat"].n for r in cls) == [2, 3]  # never pooled into one mean of 5
    assert sorted(r.variant for r in cls) == ["lr=0.0001", "lr=0.0003"]
    assert board.keys[-1] == "config"
    assert "lr=0.0003" in leaderboard.to_markdown(board)
    # rows of other methods have a single experiment: nothing to say
    assert by_method(board, "zero-shot-sd").variant == ""


def test_checkpoint_precision_and_protocol_split_rows_too():
    other_clip = row("zero-shot-sd", "eurosat", 1, 70.0, clip="c1")
    board = leaderboard.build(ROWS + [other_clip])
    sd = [r for r in board.rows if r.key["method"] == "zero-shot-sd"]
    assert len(sd) == 2 and all("clip model=" in r.variant for r in sd)
    parity = row("zero-shot-sd", "eurosat", 1, 99.0)
    parity["record"]["provenance"]["dataset"]["protocol"] = "datadream-released"
    board = leaderboard.build(ROWS + [parity])
    assert sorted(r.variant for r in board.rows if r.key["method"] == "zero-shot-sd") == [
        "protocol=datadream-released", "protocol=standard"]


def test_a_seed_counted_twice_is_counted_once():
    # the same seed of the same experiment twice (e.g. the checkpoint given by another path): the latest counts
    again = row("datadream-cls", "eurosat", 1, 50.0, finished="2026-02-01T00:00:00")
    again["cell_key"] = "another key"
    board = leaderboard.build(ROWS + [again])
    score = by_method(board, "datadream-cls").scores["eurosat"]
    assert score.seeds == [0, 1, 2] and score.values == [90.0, 50.0, 94.0] and score.superseded == 1
    assert any("left out" in n for n in leaderboard.notes(board))


def test_results_on_an_older_copy_of_the_data_are_left_out():
    newer = row("datadream-cls", "eurosat", 0, 10.0, data="d1", finished="2026-03-01T00:00:00")
    score = by_method(leaderboard.build(ROWS + [newer]), "datadream-cls").scores["eurosat"]
    assert score.values == [10.0] and score.superseded == 3


def test_missing_seeds_and_cells_are_marked_against_the_planned_grid():
    planned = [row("datadream-cls", "eurosat", s, 0.0) for s in range(3)]
    planned += [row("datadream-cls", "eurosat", s, 0.0, setting="synthetic+real") for s in range(3)]
    results = [r for r in ROWS if not (r["method"] == "datadream-cls" and r["seed"] == 2)]
    board = leaderboard.build(results, planned)
    score = by_method(board, "datadream-cls").scores["eurosat"]
    assert score.missing == [2] and score.text() == "91.0 ± 1.4 (2 of 3)"
    # a whole setting with no result at all still has its row, marked missing
    plus = by_method(board, "datadream-cls", "synthetic+real")
    assert plus.scores["eurosat"].text() == "missing (0 of 3)"
    lines = board.missing()
    assert "datadream-cls / synthetic on eurosat: seed 2 missing" in lines
    assert "datadream-cls / synthetic+real on eurosat: every seed missing" in lines
    assert "seed 2 missing" in leaderboard.to_markdown(board)


def test_formats():
    board = leaderboard.build(ROWS)
    md = leaderboard.to_markdown(board)
    assert "| datadream-cls | synthetic | 70.0 (1) | **92.0 ± 2.0 (3)** | 81.0 |" in md
    data = json.loads(leaderboard.to_json(board))
    first = data["rows"][0]
    assert first["datasets"]["eurosat"]["values"] == [90.0, 92.0, 94.0] and first["config"]
    lines = list(csv.DictReader(io.StringIO(leaderboard.to_csv(board))))
    assert {(r["method"], r["dataset"], r["n"]) for r in lines} >= {("datadream-cls", "eurosat", "3")}
    assert next(r for r in lines if r["dataset"] == "dtd" and r["method"] == "datadream-cls")["std"] == ""
    page = leaderboard.to_html(board)
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page and "<style>" in page
    assert "92.0 ± 2.0 (3)" in page and "+7.0 vs real-only" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from anywhere


def test_html_escapes_user_names():
    evil = row("<script>alert(1)</script>", "eurosat", 0, 50.0)
    page = leaderboard.to_html(leaderboard.build(ROWS + [evil]))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_published_reference_rows_are_marked(tmp_path):
    path = tmp_path / "published.csv"
    path.write_text("method,dataset,shots,setting,top1,source\n"
                    "datadream-cls,eurosat,16,synthetic,93.5,DataDream (ECCV 2024) Table 1\n"
                    "datadream-cls,dtd,16,synthetic,71.2,DataDream (ECCV 2024) Table 1\n"
                    "datadream-cls,imagenet,16,synthetic,70.0,not in this board\n")
    board = leaderboard.build(ROWS, references=read_references(path))
    published = [r for r in board.rows if r.source is not None]
    assert len(published) == 1 and set(published[0].scores) == {"eurosat", "dtd"}  # imagenet: not on the board
    assert board.rows[-1] is published[0] and not board.best(published[0], "eurosat")
    assert "(published: DataDream (ECCV 2024) Table 1)" in leaderboard.to_markdown(board)
    assert "not measured by dd-bench" in " ".join(leaderboard.notes(board))


def test_bad_reference_files_name_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("method,dataset,shots,setting,top1,source\nm,eurosat,four,synthetic,93,x\nm,d,4,synth,120,y\n")
    with pytest.raises(UsageError) as e:
        read_references(path)
    assert "bad.csv:2: shots 'four'" in str(e.value) and "bad.csv:3:" in str(e.value)
    path.write_text("method,dataset,top1\n")
    with pytest.raises(UsageError, match="header lacks shots, setting, source"):
        read_references(path)
