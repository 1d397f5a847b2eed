"""clickhouse-connect (what Superset, dbt-clickhouse and pandas users run)
against a quorumhouse node's HTTP port, unchanged.

    pip install clickhouse-connect
    python3 docs/python/clickhouse_connect_example.py 127.0.0.1:8121

Prints one line per check; exits non-zero at the first that fails.
"""

import datetime
import sys

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError


def main(address: str) -> None:
    host, port = address.rsplit(":", 1)
    client = clickhouse_connect.get_client(host=host, port=int(port))
    print("server version:", client.server_version)

    # command(): TabSeparated text.
    client.command("DROP TABLE IF EXISTS cc_events")
    client.command(
        "CREATE TABLE cc_events (id UInt64, name String, score Nullable(Float64), "
        "ts DateTime, tags Array(String), day Date, ok Bool, price Decimal(9, 2)) "
        "ENGINE = MergeTree ORDER BY id"
    )

    # insert(): DESCRIBE, then Native blocks in a compressed body.
    rows = [
        [i, f"n{i % 7}", None if i % 5 == 0 else i / 4,
         datetime.datetime(2026, 12, 1, 12, 0, i % 60),
         [f"t{i % 3}"] * (i % 3), datetime.date(2026, 12, 1 + i % 28),
         i % 2 == 0, f"{i}.25"]
        for i in range(1000)
    ]
    # Decimal values as decimal.Decimal, as the driver expects.
    import decimal
    for r in rows:
        r[7] = decimal.Decimal(r[7])
    summary = client.insert("cc_events", rows,
                            column_names=["id", "name", "score", "ts", "tags", "day", "ok", "price"])
    print("inserted:", summary.written_rows)

    # query(): Native result.
    r = client.query("SELECT count(), sum(id), countIf(score IS NULL), max(ts), "
                     "sum(length(tags)), min(day), countIf(ok), sum(price) FROM cc_events")
    print("aggregate:", r.result_rows[0])

    r = client.query("SELECT id, name, score, ts, tags, day, ok, price FROM cc_events "
                     "WHERE id IN (5, 6) ORDER BY id")
    for row in r.result_rows:
        print("row:", row)
    print("columns:", r.column_names, [t.name for t in r.column_types])

    # An empty result set (sent as FORMAT JSON by the driver).
    r = client.query("SELECT id, name FROM cc_events LIMIT 0")
    print("empty:", r.column_names, r.result_rows)

    # Query parameters, bound by the server ({name:Type}, sent as param_name).
    r = client.query("SELECT count() FROM cc_events WHERE name = {n:String} AND id < {m:UInt64}",
                     parameters={"n": "n3", "m": 100})
    print("parameters:", r.result_rows[0][0])

    # Arrow (the IPC file format) straight into a pyarrow Table.
    try:
        import pyarrow  # noqa: F401
        t = client.query_arrow("SELECT id, name FROM cc_events WHERE id < 10 ORDER BY id")
        print("arrow:", t.num_rows, t.column("name")[3].as_py())
    except ImportError:
        print("arrow: pyarrow not installed")

    # Server identity.
    print("identity:", client.command("SELECT version(), timezone()"))

    # Errors carry ClickHouse's code.
    try:
        client.query("SELECT * FROM no_such_table")
    except DatabaseError as e:
        print("error code:", getattr(e, "code", None))

    try:
        import pandas  # noqa: F401
        df = client.query_df("SELECT name, count() AS c FROM cc_events GROUP BY name ORDER BY name")
        print("dataframe:", len(df), int(df["c"].sum()))
        # A DataFrame in: its columns by name, the table's others get defaults.
        client.insert_df("cc_events", pandas.DataFrame({"id": [5000, 5001], "name": ["df-a", "df-b"]}))
        back = client.query_df("SELECT id, name, price FROM cc_events WHERE id >= 5000 ORDER BY id")
        print("insert_df:", back["name"].tolist(), [str(p) for p in back["price"]])
    except ImportError:
        print("dataframe: pandas not installed")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8121")
