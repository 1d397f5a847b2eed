"""Regenerates the golden result files from ClickHouse itself (chDB):

    pip install chdb && python3 make.py

Each <table>.<Format> holds ClickHouse's bytes for
`SELECT * FROM <t> ORDER BY 1 FORMAT <Format>` over the table and rows of
<table>.sql (all_types: every scalar type; composite: Tuple, Map and their
nestings); tests/clients.rs compares ours with them (no chDB needed).
"""
from pathlib import Path

from chdb import session

HERE = Path(__file__).parent
FORMATS = ["RowBinaryWithNamesAndTypes", "TSVWithNamesAndTypes", "CSVWithNames",
           "JSONEachRow", "JSONCompact", "Native"]

s = session.Session()
for name, table in [("all_types", "g"), ("composite", "c")]:
    for stmt in (HERE / f"{name}.sql").read_text().split(";\n"):
        if stmt.strip():
            s.query(stmt)
    for fmt in FORMATS:
        r = s.query(f"SELECT * FROM {table} ORDER BY 1 SETTINGS session_timezone = 'UTC'", fmt)
        (HERE / f"{name}.{fmt}").write_bytes(r.bytes())
print("chDB", __import__("chdb").__version__)
