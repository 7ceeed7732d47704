"""Wait for the newest backfill of a DAG to finish; print its runs' and tasks' states; exit 1 unless all succeeded.

Airflow 3's `airflow backfill create` only records the backfill and its runs; the scheduler runs them and
stamps the backfill `completed_at` once none is left running. `make airflow-test` polls that here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from airflow.models.backfill import Backfill, BackfillDagRun
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
from sqlalchemy import select


def newest_backfill(session, dag_id: str) -> Backfill:
    backfill = session.scalars(select(Backfill).where(Backfill.dag_id == dag_id)
                               .order_by(Backfill.id.desc()).limit(1)).first()
    if backfill is None:
        raise SystemExit(f"no backfill of {dag_id}")
    return backfill


def report(session, backfill_id: int) -> list[dict]:
    rows = session.scalars(select(BackfillDagRun).where(BackfillDagRun.backfill_id == backfill_id)
                           .order_by(BackfillDagRun.sort_ordinal)).all()
    runs = []
    for row in rows:
        run = session.get(DagRun, row.dag_run_id) if row.dag_run_id else None
        runs.append({
            "logical_date": str(row.logical_date), "not_created": row.exception_reason,
            "run_id": run.run_id if run else None, "state": run.state if run else None,
            "tasks": {ti.task_id: ti.state for ti in run.get_task_instances(session=session)} if run else {},
        })
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--timeout-s", type=int, default=3600)
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout_s
    while True:
        with create_session() as session:
            backfill = newest_backfill(session, args.dag_id)
            done = backfill.completed_at is not None
            runs = report(session, backfill.id)
        states = {r["logical_date"][:10]: r["state"] for r in runs}
        print(f"backfill {backfill.id}: {states}", file=sys.stderr, flush=True)
        if done or time.monotonic() > deadline:
            break
        time.sleep(20)
    print(json.dumps({"backfill_id": backfill.id, "completed": done, "runs": runs}, default=str))
    return 0 if done and runs and all(r["state"] == "success" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
