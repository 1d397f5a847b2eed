"""Regenerates the golden result files from ClickHouse itself (chDB):

    pip install chdb && python3 make.py

Each all_types.<Format> holds ClickHouse's bytes for
`SELECT * FROM g ORDER BY u8 FORMAT <Format>` over the table and rows of
all_types.sql; tests/clients.rs compares ours with them (no chDB needed).
"""
from pathlib import Path

from chdb import session

HERE = Path(__file__).parent
FORMATS = ["RowBinaryWithNamesAndTypes", "TSVWithNamesAndTypes", "CSVWithNames",
           "JSONEachRow", "JSONCompact", "Native"]

s = session.Session()
for stmt in (HERE / "all_types.sql").read_text().split(";\n"):
    if stmt.strip():
        s.query(stmt)
for fmt in FORMATS:
    r = s.query("SELECT * FROM g ORDER BY u8 SETTINGS session_timezone = 'UTC'", fmt)
    (HERE / f"all_types.{fmt}").write_bytes(r.bytes())
print("chDB", __import__("chdb").__version__)
