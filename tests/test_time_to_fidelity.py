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


@pytest.mark.mpi
@pytest.mark.slow
def test_points_run_side_by_side_on_their_own_cores_and_report_a_reached_target(tmp_path):
    """Two 1-rank seeds share the host at once, one core each; the 2-rank point gets both cores alone. A target that
    the fitted start already meets is reached at step 0; one nothing meets is "not reached" with no time."""
    import os

    from hpcgen.bench.time_to_fidelity import TimeToFidelityConfig, run_time_to_fidelity
    from tests.conftest import write_small_calo

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 cores")
    data, held = write_small_calo(tmp_path / "t.h5", n=128), write_small_calo(tmp_path / "h.h5", n=64, seed=1)
    lines = []
    easy = {k: math.inf for k in TARGETS}
    cfg = TimeToFidelityConfig(data=data, eval_data=held, out=tmp_path / "ttf.json", ranks=(1, 2), seeds=(1, 2),
                               minutes=0.1, batch_per_rank=8, eval_every=5, warmup_steps=2, targets=easy,
                               runs=tmp_path / "runs")
    result = run_time_to_fidelity(cfg, say=lines.append)
    starts = [x for x in lines if x.startswith("time-to-fidelity:")]
    a, b = sorted(os.sched_getaffinity(0))[:2]
    assert starts[:2] == [f"time-to-fidelity: 1 rank(s), seed 1, 0.1 min on core(s) [{a}]",
                          f"time-to-fidelity: 1 rank(s), seed 2, 0.1 min on core(s) [{b}]"]
    assert starts[2:] == [f"time-to-fidelity: 2 rank(s), seed {s}, 0.1 min on core(s) [{a}, {b}]" for s in (1, 2)]
    rows = {r["ranks"]: r for r in result["rows"]}
    assert rows[1]["reached"] == rows[2]["reached"] == 2
    assert all(p["at"]["step"] == 0 and p["at"]["samples_seen"] == 0 for r in rows.values() for p in r["points"])
    assert (tmp_path / "ttf.png").exists()
    never = TimeToFidelityConfig(data=data, eval_data=held, out=tmp_path / "n.json", ranks=(1,), seeds=(1,),
                                 minutes=0.05, batch_per_rank=8, eval_every=5, targets={"AUC_high_level": -1.0},
                                 runs=tmp_path / "runs2")
    row = run_time_to_fidelity(never, say=lambda _: None)["rows"][0]
    assert row["reached"] == 0 and "time_to_target_s" not in row
