"""`quorumhouse bench clients`, the Python side: clickhouse-connect (what
Superset, dbt and pandas users run) against one node's HTTP port.

    python3 clients_bench.py HOST:PORT SOURCE_TABLE SINK_TABLE RUNS

Prints one JSON object: seconds per run of query_df, query_arrow,
insert_df and insert_arrow over the whole source table, the rows, and the
Arrow size of the data (the MB of MB/s). Also the Native bytes alone both
ways (raw_query / raw_insert of the same rows, no pandas conversion), which
splits the Native paths' time between the server and the client's Python."""
import json
import sys
import time

import clickhouse_connect


def timed(runs, f):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return out


def main(addr, source, sink, runs):
    host, port = addr.rsplit(":", 1)
    client = clickhouse_connect.get_client(host=host, port=int(port))
    q = f"SELECT * FROM {source}"
    table = client.query_arrow(q)
    df = client.query_df(q)
    figures = {
        "rows": table.num_rows,
        "arrow_bytes": table.nbytes,
        "query_df": timed(runs, lambda: client.query_df(q)),
        "query_arrow": timed(runs, lambda: client.query_arrow(q)),
        "query_native_raw": timed(runs, lambda: client.raw_query(q, fmt="Native")),
    }
    native = client.raw_query(q, fmt="Native")
    columns = list(table.column_names)

    def insert(f):
        def run():
            client.command(f"TRUNCATE TABLE {sink}")
            f()
        return run

    figures["insert_df"] = timed(runs, insert(lambda: client.insert_df(sink, df)))
    figures["insert_arrow"] = timed(runs, insert(lambda: client.insert_arrow(sink, table)))
    figures["insert_native_raw"] = timed(runs, insert(
        lambda: client.raw_insert(sink, columns, insert_block=native, fmt="Native")))
    rows = client.command(f"SELECT count() FROM {sink}")
    if int(rows) != table.num_rows:
        raise SystemExit(f"sink holds {rows} rows, expected {table.num_rows}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
