"""Time to fidelity: the first evaluation meeting the targets, medians over seeds, and the CLI's guards."""

from __future__ import annotations

import math

import pytest

from hpcgen.bench.time_to_fidelity import first_meeting, parse_targets, summarise_points
from hpcgen.errors import UserError
from hpcgen.fidelity.monitor import TARGETS, meets_targets


def _score(auc: float, width: float = 0.1) -> dict:
    return {"AUC_high_level": auc, "S_e_vis_over_e_p_over_floor": 1.0, "S_layer_energy_median_over_floor": 1.5,
            "response_mean_rel_error_max": 0.01, "response_width_rel_error_max": width}


def test_the_first_evaluation_meeting_every_target_is_the_time_to_fidelity():
    evals = [{"step": s, "wall_s": 10.0 * s, "samples_seen": 64 * s, "eval": _score(a, w)}
             for s, a, w in ((0, 1.0, 0.1), (100, 0.84, 0.5), (200, 0.84, 0.2), (300, 0.80, 0.1))]
    assert first_meeting(evals, TARGETS) == {"step": 200, "wall_s": 2000.0, "samples_seen": 12800}
    assert first_meeting(evals, parse_targets(["AUC_high_level=0.5"])) is None
    assert not meets_targets(_score(math.inf)) and not meets_targets(_score(float("nan")))


def test_rows_give_the_median_over_the_seeds_that_reached_the_target_and_count_the_others():
    pts = [{"ranks": 1, "seed": s, "reached": t is not None, "at": None if t is None else {"wall_s": t, "samples_seen": 10 * t},
            "best": {"AUC_high_level": 0.8}} for s, t in ((1, 100.0), (2, 300.0), (3, None))]
    pts.append({"ranks": 2, "seed": 1, "reached": False, "at": None, "best": {"AUC_high_level": 0.9}})
    rows = summarise_points(pts)
    assert [r["ranks"] for r in rows] == [1, 2] and [r["cores"] for r in rows] == [1, 2]
    assert rows[0]["reached"] == 2 and rows[0]["time_to_target_s"]["median"] == 200.0
    assert rows[0]["samples_to_target"]["max"] == 3000.0
    assert rows[1]["reached"] == 0 and "time_to_target_s" not in rows[1]  # never a time for a run that did not get there


@pytest.mark.parametrize("item, words", [("AUC_high_level", "expected METRIC=VALUE"),
                                         ("AUC_high_level=x", "expected METRIC=VALUE")])
def test_bad_targets_are_one_line_errors(item, words):
    with pytest.raises(UserError, match=words):
        parse_targets([item])


def test_unknown_target_metric_names_the_allowed_ones(tmp_path):
    from hpcgen.bench.time_to_fidelity import TimeToFidelityConfig

    (tmp_path / "a.h5").write_bytes(b"")
    with pytest.raises(UserError, match=r"unknown metric\(s\) AUC; allowed: response_mean_rel_error_max"):
        TimeToFidelityConfig(data=tmp_path / "a.h5", eval_data=tmp_path / "a.h5", out=tmp_path / "o.json",
                             targets={"AUC": 0.9})
