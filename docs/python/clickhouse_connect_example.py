"""clickhouse-connect (what Superset, dbt-clickhouse and pandas users run)
against a quorumhouse node's HTTP port, unchanged.

    pip install clickhouse-connect
    python3 docs/python/clickhouse_connect_example.py 127.0.0.1:8121

Prints one line per check; exits non-zero at the first that fails.
"""

import datetime
import os
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

    # insert_arrow: an Arrow IPC file in the body.
    try:
        import pyarrow
        client.insert_arrow("cc_events", pyarrow.table({"id": [6000, 6001], "name": ["ar-a", "ar-b"]}))
        back = client.query("SELECT name FROM cc_events WHERE id >= 6000 AND id < 7000 ORDER BY id")
        print("insert_arrow:", [r[0] for r in back.result_rows])
    except ImportError:
        print("insert_arrow: pyarrow not installed")

    # LowCardinality: dictionary-encoded Native both ways.
    client.command("DROP TABLE IF EXISTS cc_lc")
    client.command("CREATE TABLE cc_lc (id UInt32, city LowCardinality(String), "
                   "tag LowCardinality(Nullable(String))) ENGINE = MergeTree ORDER BY id")
    client.insert("cc_lc", [[i, ["oslo", "rome", ""][i % 3], None if i % 4 == 0 else f"t{i % 2}"]
                            for i in range(100)], column_names=["id", "city", "tag"])
    r = client.query("SELECT id, city, tag FROM cc_lc WHERE id < 5 ORDER BY id")
    print("lowcardinality:", r.result_rows, [t.name for t in r.column_types])
    r = client.query("SELECT count(), countIf(city = 'oslo'), countIf(tag IS NULL) FROM cc_lc")
    print("lowcardinality counts:", r.result_rows[0])

    # A temporary table lives in the client's session (clickhouse-connect
    # sends a session_id): visible to its own queries and inserts only.
    client.command("CREATE TEMPORARY TABLE cc_tmp (x UInt32, s String)")
    client.insert("cc_tmp", [[i, f"s{i}"] for i in range(10)], column_names=["x", "s"])
    print("temporary:", client.query("SELECT count(), sum(x) FROM cc_tmp").result_rows[0])
    other = clickhouse_connect.get_client(host=host, port=int(port))
    try:
        other.query("SELECT count() FROM cc_tmp")
    except DatabaseError as e:
        print("temporary elsewhere:", getattr(e, "code", None))

    # Tuples and maps, both ways: clickhouse-connect sends Python tuples and
    # dicts as Native columns and reads them back as the same.
    client.command("CREATE TABLE cc_nested (id UInt32, t Tuple(a String, b Nullable(Int32)), "
                   "m Map(String, UInt64), am Array(Map(String, Float64))) "
                   "ENGINE = MergeTree ORDER BY id")
    client.insert("cc_nested", [[1, ("x", None), {"k": 1, "l": 2}, [{"p": 0.5}]],
                                [2, ("y", 7), {}, []]],
                  column_names=["id", "t", "m", "am"])
    rows = client.query("SELECT id, t, m, am, m['l'], t.b FROM cc_nested ORDER BY id").result_rows
    print("nested:", rows)
    types = client.query("SELECT t, m FROM cc_nested LIMIT 1").column_types
    print("nested types:", [t.name for t in types])

    # Parquet both ways: a file pandas writes goes in, the result comes back
    # as a Parquet file pyarrow reads.
    try:
        import io

        import pandas
        import pyarrow.parquet as pq
        buf = io.BytesIO()
        pandas.DataFrame({"id": [7000, 7001, 7002], "name": ["pq-a", "pq-b", "pq/c"],
                          "score": [0.5, None, 2.5]}).to_parquet(buf)
        client.raw_insert("cc_events", ["id", "name", "score"], insert_block=buf.getvalue(),
                          fmt="Parquet")
        raw = client.raw_query("SELECT id, name, score FROM cc_events WHERE id >= 7000 ORDER BY id",
                               fmt="Parquet")
        t = pq.read_table(io.BytesIO(raw))
        print("parquet:", t.num_rows, t.column("name").to_pylist(), t.column("score").to_pylist())
    except ImportError:
        print("parquet: pandas or pyarrow not installed")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8121")
    # pyarrow's Parquet reader/writer can abort the interpreter's teardown
    # ("terminate called without an active exception"; pyarrow 25-26 with
    # Python 3.11, about one run in four, with no server involved). All the
    # work is done and printed by now: leave without the teardown.
    sys.stdout.flush()
    os._exit(0)
