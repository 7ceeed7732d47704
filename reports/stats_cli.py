"""`mutuals experiment-stats`: the A/B stats engine on sufficient statistics, JSON in and out.

    mutuals experiment-stats --input spec.json
    some-tool | mutuals experiment-stats --input -

Reads one JSON object (the spec: alpha, correction, srm_threshold, variants, metrics), runs
`reports.stats.analyze` and prints the result as one JSON document on stdout. The input and output
shapes, the formulas and the conventions are documented in `reports.stats`; tools outside the repo call
this command, so both shapes are a contract.

Exit codes: 0; 2 when the spec is malformed (not JSON, a missing field, a wrong type, an unknown kind or
correction, weights that do not sum to 1), with one `StatsInputInvalid: <field path>: <problem>` line on
stderr; 10 when the input file does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mutuals.errors import MissingInput, run_and_exit_code
from reports.stats import StatsInputInvalid, analyze


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mutuals experiment-stats", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, metavar="FILE",
                        help="the JSON spec to analyze, or - to read it from stdin")
    return parser


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_spec(source: str) -> Any:
    """The parsed spec from FILE or stdin ('-'); NaN and Infinity are refused, as JSON does."""
    if source == "-":
        text = sys.stdin.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise MissingInput(f"--input {source}: no such file")
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise StatsInputInvalid(f"input: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    except ValueError as exc:
        raise StatsInputInvalid(f"input: not valid JSON ({exc})") from exc


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    result = analyze(read_spec(args.input))
    print(json.dumps(result, indent=2, allow_nan=False))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Exit code: 0, or the failure family's code with one `ClassName: message` line on stderr."""
    return run_and_exit_code(lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
