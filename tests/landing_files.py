"""Write tiny hand-made landing files for ingest tests."""

from __future__ import annotations

from pathlib import Path

HEADERS = {
    "members": "member_id,industry,region,joined_on",
    "connections": "src,dst,connected_at",
    "positions": "member_id,company_id,start_date,end_date",
    "educations": "member_id,school_id,start_date,end_date",
}


def write_landing(root: Path, table: str, ds: str, lines: list[str], *, name: str = "part-00000",
                  header: bool = True, crlf: bool = False, raw: bytes | None = None) -> Path:
    """Write one landing file; CSV tables get their header unless `header=False`."""
    ext = "jsonl" if table in ("events", "experiment_assignments") else "csv"
    folder = root / "landing" / table / f"ds={ds}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.{ext}"
    if raw is not None:
        path.write_bytes(raw)
        return path
    body = ([HEADERS[table]] if ext == "csv" and header else []) + lines
    end = "\r\n" if crlf else "\n"
    path.write_text(end.join(body) + end, encoding="utf-8")
    return path
