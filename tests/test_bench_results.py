"""The hpcgen.bench/1 results contract: committed files follow it, bad files fail with one line naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpcgen.bench.results import check_result, host_info, load_result, make_result, summarise, write_result

RESULTS = sorted((Path(__file__).parents[1] / "benchmarks" / "results").glob("*.json"))
HOST = {"cpu": "test cpu", "cores": 2, "gpu": None, "torch": None, "mpi_library": None, "engine": None}


def valid() -> dict:
    return make_result("demo", {"repeats": 3}, [{"x": 1, "t": summarise([1.0, 2.0, 3.0])},
                                                {"x": 2, "deep": {"a": {"b": summarise([5.0])}}}], host=dict(HOST),
                       predictions=[{"ranks": 2, "efficiency": 0.9}], literature=[{"source": "a paper", "v": 1.0}])


def test_there_are_committed_results():
    assert RESULTS


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_committed_results_follow_the_contract(path):
    load_result(path)  # a contract error is a ValueError naming this file and the field


def test_valid_result_passes():
    check_result(valid(), "valid.json")


def _drop_kind(r):
    del r["kind"]


def _no_summary(r):
    r["rows"][1] = {"x": 2, "rate_median": 3.0}


def _min_above_median(r):
    r["rows"][0]["t"]["min"] = 2.5


def _wrong_schema(r):
    r["schema"] = "hpcgen.bench/0"


def _missing_host_key(r):
    del r["host"]["mpi_library"]


def _prediction_in_rows(r):
    r["rows"].append({"kind": "prediction", "t": summarise([1.0])})


def _literature_without_source(r):
    r["literature"][0] = {"v": 1.0}


def _bad_n(r):
    r["rows"][1]["deep"]["a"]["b"]["n"] = 0


@pytest.mark.parametrize("mutate, field", [
    (_drop_kind, "kind"), (_no_summary, "rows[1]"), (_min_above_median, "rows[0].t"), (_wrong_schema, "schema"),
    (_missing_host_key, "host.mpi_library"), (_prediction_in_rows, "rows[2].kind"),
    (_literature_without_source, "literature[0].source"), (_bad_n, "rows[1].deep.a.b"),
])
def test_check_result_rejects_with_one_line_naming_the_field(mutate, field):
    obj = valid()
    mutate(obj)
    with pytest.raises(ValueError) as err:
        check_result(obj, "some/dir/file.json")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"some/dir/file.json: {field}: "), msg
    assert "allowed" in msg or "put it under" in msg


def test_summarise_median_odd_and_even():
    assert summarise([3, 1, 2]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    s = summarise([4, 1, 3, 2])
    assert s == {"median": 2.5, "min": 1.0, "max": 4.0, "n": 4}
    assert all(isinstance(s[k], float) for k in ("median", "min", "max")) and isinstance(s["n"], int)
    with pytest.raises(ValueError):
        summarise([])


def test_write_load_round_trip_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "r.json"
    result = valid()
    write_result(path, result)
    text = path.read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "schema"')
    assert load_result(path) == result
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]

    bad = valid()
    bad["config"]["unserialisable"] = object()
    with pytest.raises(TypeError):
        write_result(path, bad)
    assert path.read_text() == text  # the old file is untouched
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # and no temporary file is left

    def failing_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr("hpcgen.bench.results.os.replace", failing_replace)
    with pytest.raises(OSError, match="disk gone"):
        write_result(path, valid())  # fails after the temporary file was written
    monkeypatch.undo()
    assert path.read_text() == text
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]

    with pytest.raises(ValueError, match="kind"):
        write_result(tmp_path / "never.json", {**valid(), "kind": ""})
    assert not (tmp_path / "never.json").exists()


def test_load_result_of_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"schema": "hpcgen.bench/1",')
    with pytest.raises(ValueError) as err:
        load_result(path)
    assert str(path) in str(err.value) and "not valid JSON" in str(err.value) and "\n" not in str(err.value)
    path.write_text(json.dumps({**valid(), "rows": []}))
    with pytest.raises(ValueError, match=r"broken\.json: rows: "):
        load_result(path)


def test_host_info_fills_the_contract_keys():
    host = host_info(engine="ddp")
    assert host["engine"] == "ddp" and isinstance(host["cpu"], str) and host["cores"] >= 1
    check_result(make_result("demo", {}, [{"t": summarise([1.0])}], host=host), "host.json")


def test_results_record_isa_flags_and_a_command_line_without_absolute_paths(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["/abs/bench_x.py", "--out", str(tmp_path / "r" / "x.json"), "--cache=/elsewhere/c"])
    result = make_result("demo", {}, [{"t": summarise([1.0])}])
    assert result["provenance"]["command"] == "bench_x.py --out r/x.json --cache=elsewhere/c"
    assert isinstance(result["host"]["isa"], list)
    assert all(flag in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
               for flag in result["host"]["isa"])
