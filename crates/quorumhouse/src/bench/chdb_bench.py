"""chDB side of `quorumhouse bench`: loads the same CSV into an embedded
ClickHouse (chDB) and times the same queries. Prints one JSON object."""
import json
import sys
import time

csv_path, data_dir, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
from chdb import session  # noqa: E402

s = session.Session(data_dir)
s.query("CREATE DATABASE IF NOT EXISTS b")
s.query("DROP TABLE IF EXISTS b.hits")
s.query(
    "CREATE TABLE b.hits (ts DateTime, user_id UInt64, event LowCardinality(String), url String, "
    "value Float64) "
    "ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (user_id, ts)"
)
t = time.time()
s.query(
    f"INSERT INTO b.hits SELECT * FROM file('{csv_path}', CSV, "
    "'ts DateTime, user_id UInt64, event String, url String, value Float64')"
)
insert_s = time.time() - t
s.query("OPTIMIZE TABLE b.hits FINAL")
queries = json.loads(sys.stdin.read())
out = {"insert_seconds": insert_s, "queries": {}}
for name, sql in queries.items():
    sql = sql.replace(" hits", " b.hits")
    times = []
    for _ in range(runs):
        t = time.time()
        s.query(sql, "CSV")
        times.append(time.time() - t)
    out["queries"][name] = times
size = s.query(
    "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'b' AND table = 'hits' AND active",
    "CSV",
)
out["bytes_on_disk"] = int(str(size).strip() or 0)
print(json.dumps(out))
