"""`mutuals experiment-stats` end to end: the installed command in a subprocess, FILE and stdin.

The reference cases in tests/data/gbstats/ hold an input spec and checks: a path into the output, the value
GrowthBook published (or, for its degenerate cases, the default result its code returns), the decimals it was
published with (null: exact), and the GrowthBook test or code it comes from.

Each installed-command run costs a Python start with numpy and scipy (about 2 s of CPU), so the reference
cases and most malformed inputs go through the command's own `main()` in this process (the same argument
parsing, JSON reading and printing); the subprocess tests cover the installed entry point, stdin against FILE,
exit codes and the help listing.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from reports import stats_cli

REPO = Path(__file__).resolve().parents[1]
MUTUALS = REPO / ".venv" / "bin" / "mutuals"
CASES = sorted((REPO / "tests" / "data" / "gbstats").glob("*.json"))


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(MUTUALS), "experiment-stats", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)


def lookup(document: object, path: str) -> object:
    """The value at a path such as results[0].relative.ci[1]."""
    for name, index in re.findall(r"([A-Za-z_]+)|\[(\d+)\]", path):
        document = document[name] if name else document[int(index)]
    return document


def assert_check(output: dict, check: dict) -> None:
    actual = lookup(output, check["path"])
    expected, decimals = check["value"], check["decimals"]
    if decimals is None:
        assert actual == expected, (check, actual)
    else:
        assert actual is not None, check
        assert abs(actual - expected) <= 0.5 * 10.0**-decimals + 1e-12, (check, actual)


def load_case(name: str) -> dict:
    return json.loads((REPO / "tests" / "data" / "gbstats" / name).read_text())


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """The command's main() in this process: exit code, stdout, stderr."""
    code = stats_cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_spec(capsys, spec: object, folder: Path) -> tuple[int, str, str]:
    """main() on a spec written to a file in `folder`."""
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return run_main(capsys, "--input", str(path))


@pytest.mark.parametrize("case_file", CASES, ids=[case.stem for case in CASES])
def test_reference_case_through_the_command(case_file, capsys, tmp_path):
    case = json.loads(case_file.read_text())
    code, out, err = run_spec(capsys, case["input"], tmp_path)
    assert code == 0, err
    output = json.loads(out)
    for check in case["checks"]:
        assert_check(output, check)


def test_one_reference_case_through_the_installed_command(tmp_path):
    case = load_case("ratio_cuped.json")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(case["input"]))
    done = run_cli("--input", str(spec))
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    for check in case["checks"]:
        assert_check(output, check)


def test_a_default_result_prints_strict_json_with_zero_bounds(capsys, tmp_path):
    code, out, _ = run_spec(capsys, load_case("default_ratio_zero_denominator.json")["input"], tmp_path)
    assert code == 0
    assert "NaN" not in out and "Infinity" not in out
    row = json.loads(out)["results"][0]
    assert row["relative"] == {"estimate": 0, "ci": [0, 0], "p_value": 1}


def test_contract_example_from_stdin_equals_from_file(tmp_path):
    case = load_case("contract_example.json")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(case["input"]))
    from_file = run_cli("--input", str(spec))
    from_stdin = run_cli("--input", "-", stdin=json.dumps(case["input"]))
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert json.loads(from_stdin.stdout) == json.loads(from_file.stdout)
    output = json.loads(from_stdin.stdout)
    for check in case["checks"]:
        assert_check(output, check)
    assert set(output) == {"srm", "results"}
    assert [(r["metric"], r["variant"]) for r in output["results"]] == [
        ("invites", "treatment"), ("clicked", "treatment"), ("ctr", "treatment")]
    # Holm over the two goal metrics: the smaller relative p-value (invites, 0.0619...) doubled, and the larger
    # one (clicked, 0.807...) kept as the running maximum of its own p x 1
    invites, clicked, ctr = output["results"]
    assert invites["p_value_adjusted"] == pytest.approx(2 * invites["relative"]["p_value"], abs=1e-12)
    assert clicked["p_value_adjusted"] == pytest.approx(clicked["relative"]["p_value"], abs=1e-12)
    assert ctr["p_value_adjusted"] is None


def malformed(edit) -> str:
    spec = load_case("contract_example.json")["input"]
    edit(spec)
    return json.dumps(spec)


@pytest.mark.parametrize(("edit", "field"), [
    (lambda s: s["metrics"][0]["stats"]["treatment"].pop("sum_squares"), "metrics[0].stats.treatment.sum_squares"),
    (lambda s: s["metrics"][1]["stats"]["control"].update(n="28"), "metrics[1].stats.control.n"),
    (lambda s: s["metrics"][2].update(kind="percentile"), "metrics[2].kind"),
    (lambda s: s["variants"][0].update(weight=0.7), "variants[*].weight"),
    (lambda s: s.pop("variants"), "variants"),
    (lambda s: s.update(correction="bonferroni"), "correction"),
])
def test_malformed_input_exits_2_naming_the_field(edit, field, capsys, tmp_path):
    code, out, err = run_spec(capsys, json.loads(malformed(edit)), tmp_path)
    assert code == 2, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"StatsInputInvalid: {field}: "), err


def test_malformed_input_from_stdin_exits_2_from_the_installed_command():
    done = run_cli("--input", "-", stdin=malformed(lambda s: s["metrics"][2].update(kind="percentile")))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "StatsInputInvalid: metrics[2].kind: unknown kind 'percentile' (expected one of: mean, proportion, ratio)"]


def test_input_that_is_not_json_exits_2(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text('{"variants": [')
    code, _, err = run_main(capsys, "--input", str(spec))
    assert code == 2
    assert err.startswith("StatsInputInvalid: input: not valid JSON")


def test_nan_in_the_input_exits_2():
    done = run_cli("--input", "-", stdin=malformed(lambda s: None).replace("1396.87", "NaN"))
    assert done.returncode == 2
    assert done.stderr.startswith("StatsInputInvalid: input: not valid JSON (NaN is not a JSON number)")


def test_missing_input_file_exits_10(tmp_path, capsys):
    code, _, err = run_main(capsys, "--input", str(tmp_path / "absent.json"))
    assert code == 10
    assert "absent.json: no such file" in err


def test_the_command_is_listed_in_mutuals_help():
    done = subprocess.run([str(MUTUALS), "--help"], capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert done.returncode == 0
    assert re.search(r"experiment-stats\s+the A/B stats engine", done.stdout)
