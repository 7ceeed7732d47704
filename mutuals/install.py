"""Setup step run by `make setup`: wire the venv's spark-submit to our jars, its Python and quiet logs.

Why write spark-defaults.conf into the venv's pyspark: `spark-submit spark_jobs/JOB.py` (the design's
contract) must find the Delta jars and extensions with no extra flags, exactly as a Python-launched
session does. The same file names this venv's interpreter as `spark.pyspark.python`: spark-submit runs
the driver and the Python workers with it, where the default `python3` on PATH has no pyarrow or numba.
On a cluster the same settings come from `--packages` and `--conf` instead.
A `log4j2.properties` beside it keeps Spark's own console logging at WARN, so a job's progress, its JSON
summary and an expected failure's one-line message are not buried under INFO start-up lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mutuals.session import BASE_CONF, DELTA_CONF, LOG_CONFIG_NAME, PYSPARK_PYTHON_CONF, spark_conf_dir


def write_spark_defaults(jars_dir: Path) -> Path:
    jars = sorted(str(p) for p in jars_dir.resolve().glob("*.jar"))
    if not jars:
        raise SystemExit(f"no jars in {jars_dir}: run `mvn -q -B dependency:copy-dependencies` first")
    conf_dir = spark_conf_dir()
    conf_dir.mkdir(exist_ok=True)
    lines = [f"spark.jars {','.join(jars)}"]
    lines += [f"{k} {v}" for k, v in {**DELTA_CONF, **BASE_CONF}.items() if k != "spark.driver.memory"]
    lines.append(f"{PYSPARK_PYTHON_CONF} {sys.executable}")
    target = conf_dir / "spark-defaults.conf"
    target.write_text("\n".join(lines) + "\n")
    return target


LOG4J2_PROPERTIES = """\
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


def write_log_config(conf_dir: Path) -> Path:
    target = conf_dir / LOG_CONFIG_NAME
    target.write_text(LOG4J2_PROPERTIES)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jars-dir", type=Path, required=True)
    args = parser.parse_args()
    defaults = write_spark_defaults(args.jars_dir)
    print(f"wrote {defaults} and {write_log_config(defaults.parent)}")


if __name__ == "__main__":
    main()
