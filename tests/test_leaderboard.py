"""The leaderboard: mean ± std over seeds, averages only over complete rows, reference rows last."""

import csv
import io
import json

import pytest

from datadream_bench import leaderboard


def row(method, dataset, seed, top1, setting="synthetic", shots=16, profile="paper"):
    return dict(method=method, dataset=dataset, seed=seed, top1=top1, setting=setting, shots=shots,
                profile=profile, classifier="clip-lora")


ROWS = [row("datadream-cls", "eurosat", s, v) for s, v in enumerate([90.0, 92.0, 94.0])] + [
    row("datadream-cls", "dtd", 0, 70.0),
    row("zero-shot-sd", "eurosat", 0, 80.0),
    row("zero-shot-clip", "eurosat", 0, 50.0, setting="none"),
    row("zero-shot-clip", "dtd", 0, 40.0, setting="none"),
]


def test_scores_and_average():
    board = leaderboard.build(ROWS)
    assert board.datasets == ["dtd", "eurosat"]
    rows = {key: scores for key, scores in board.rows}
    cls = rows[("datadream-cls", "synthetic")]
    assert cls["eurosat"].mean == pytest.approx(92.0) and cls["eurosat"].std == pytest.approx(2.0)
    assert cls["eurosat"].text() == "92.0 ± 2.0 (3)"
    assert board.average(cls) == pytest.approx(81.0)
    assert board.average(rows[("zero-shot-sd", "synthetic")]) is None  # dtd missing: no average
    assert [key[0] for key, _ in board.rows][-1] == "zero-shot-clip"  # reference rows last
    assert board.fixed == {"shots": 16, "profile": "paper", "classifier": "clip-lora"}


def test_several_shot_counts_split_rows():
    board = leaderboard.build(ROWS + [row("datadream-cls", "eurosat", 0, 60.0, shots=1)])
    assert board.keys == ["method", "setting", "shots"]
    assert ("datadream-cls", "synthetic", 1) in {key for key, _ in board.rows}


def test_formats():
    board = leaderboard.build(ROWS)
    md = leaderboard.to_markdown(board)
    assert "| datadream-cls | synthetic | 70.0 ± 0.0 (1) | 92.0 ± 2.0 (3) | 81.0 |" in md
    data = json.loads(leaderboard.to_json(board))
    assert data["rows"][0]["datasets"]["eurosat"]["values"] == [90.0, 92.0, 94.0]
    lines = list(csv.DictReader(io.StringIO(leaderboard.to_csv(board))))
    assert {(r["method"], r["dataset"], r["n"]) for r in lines} >= {("datadream-cls", "eurosat", "3")}
    assert "<td>92.0 ± 2.0 (3)</td>" in leaderboard.to_html(board)
