"""Regenerates clickhouse_settings.txt: the names (aliases included) of every
setting ClickHouse knows, which quorumhouse accepts without acting on them
unless settings.rs says otherwise. Needs chDB: pip install chdb."""
import pathlib

import chdb

rows = chdb.query("SELECT name FROM system.settings ORDER BY name", "TSV")
names = rows.bytes().decode().split()
version = chdb.query("SELECT version()", "TSV").bytes().decode().strip()
out = pathlib.Path(__file__).with_name("clickhouse_settings.txt")
out.write_text(f"# ClickHouse {version} (chDB), {len(names)} names\n" + "\n".join(names) + "\n")
