"""Query quorumhouse from Python over its gRPC API (proto/quorumhouse.proto).

    pip install grpcio grpcio-tools pyarrow
    python3 docs/python/quorumhouse_example.py 127.0.0.1:9001

The stubs are generated from proto/ when the script starts; results arrive as
Arrow IPC streams, read here with pyarrow. Errors carry ClickHouse's codes.
"""
import importlib
import os
import sys
import tempfile

import grpc
import pyarrow as pa
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "proto")


def load_stubs():
    out = tempfile.mkdtemp(prefix="qh-stubs-")
    rc = protoc.main([
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        os.path.join(PROTO_DIR, "quorumhouse.proto"),
    ])
    if rc != 0:
        raise SystemExit("protoc failed on proto/quorumhouse.proto")
    sys.path.insert(0, out)
    return importlib.import_module("quorumhouse_pb2"), importlib.import_module("quorumhouse_pb2_grpc")


class QueryError(Exception):
    def __init__(self, code, name, message):
        super().__init__(f"Code: {code}. {message}. ({name})")
        self.code = code
        self.name = name


class Client:
    def __init__(self, endpoint):
        self.pb, grpc_mod = load_stubs()
        self.stub = grpc_mod.QueryServiceStub(grpc.insecure_channel(endpoint))
        self.session_id = f"python-{os.getpid()}"

    def ping(self):
        return self.stub.Ping(self.pb.PingRequest(), timeout=5)

    def query(self, sql, settings=None, data=None):
        """Runs one statement; returns a pyarrow.Table (None when it has no result set)."""
        pb = self.pb

        def requests():
            start = pb.QueryStart(sql=sql, settings=settings or {}, session_id=self.session_id,
                                  has_input=data is not None)
            yield pb.QueryRequest(start=start)
            if data is not None:
                for i in range(0, len(data), 1 << 20):
                    yield pb.QueryRequest(input=data[i:i + (1 << 20)])

        tables = []
        for resp in self.stub.Query(requests()):
            kind = resp.WhichOneof("kind")
            if kind == "arrow_ipc":
                tables.append(pa.ipc.open_stream(resp.arrow_ipc).read_all())
            elif kind == "exception":
                e = resp.exception
                raise QueryError(e.code, e.name, e.message)
        return pa.concat_tables(tables) if tables else None


def main():
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9001"
    c = Client(endpoint)
    print("connected to node", c.ping().node_id)
    c.query("CREATE TABLE IF NOT EXISTS py_events (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
    rows = "".join(f"{i},name {i}\n" for i in range(1000)).encode()
    c.query("INSERT INTO py_events FORMAT CSV", settings={"insert_deduplicate": "1"}, data=rows)
    t = c.query("SELECT count() AS n, sum(id) AS s FROM py_events")
    print("rows:", t.column("n")[0].as_py(), "sum:", t.column("s")[0].as_py())
    try:
        c.query("SELECT * FROM no_such_table")
    except QueryError as e:
        print("error code:", e.code, e.name)


if __name__ == "__main__":
    main()
