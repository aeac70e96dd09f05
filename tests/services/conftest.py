"""Real services for the multi-writer cases, started by the tests themselves.

- PostgreSQL from Debian's packages (``postgresql``, binaries in /usr/lib/postgresql/<version>/bin): ``initdb`` in a
  temporary directory, a free port on 127.0.0.1, stopped when the session ends. As root (CI containers), the server
  runs as the ``postgres`` user the package creates: PostgreSQL refuses to run as root.
- An S3-compatible server on 127.0.0.1: moto's (``moto[server]``, pinned in the dev extra), in this process.

Each test gets its own database and its own bucket, so lakes never see each other.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestration.config import Home

PG_USER = "chartlake"
S3_KEY, S3_SECRET, S3_REGION = "chartlake-test", "chartlake-test-secret", "us-east-1"


def postgres_bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    bin: Path
    data: Path
    port: int
    runas: str | None

    def uri(self, dbname: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"dbname={dbname} host=127.0.0.1 port={self.port} user={PG_USER}"

    def create_database(self, prefix: str = "lake") -> str:
        import psycopg2

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        con = psycopg2.connect(self.dsn())
        con.autocommit = True
        try:
            con.cursor().execute(f'CREATE DATABASE "{name}"')
        finally:
            con.close()
        return name

    def query(self, dbname: str, sql: str) -> list[tuple]:
        import psycopg2

        con = psycopg2.connect(self.dsn(dbname))
        try:
            cur = con.cursor()
            cur.execute(sql)
            return cur.fetchall()
        finally:
            con.close()

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        return _run_pg([str(self.bin / "pg_ctl"), "-D", str(self.data), *args], self.runas)


def _run_pg(cmd: list[str], runas: str | None) -> subprocess.CompletedProcess:
    if runas:
        cmd = ["runuser", "-u", runas, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def start_postgres(bin_dir: Path):
    """A throwaway PostgreSQL server on 127.0.0.1 (also used by benchmarks/multiwriter.py)."""
    runas = None
    # Not under pytest's base temp: that is private to this user (0700) and pytest resets its mode, while the
    # server may have to run as another user.
    root = Path(tempfile.mkdtemp(prefix="chartlake-pg-"))
    if os.geteuid() == 0:
        pwd.getpwnam("postgres")  # KeyError: no user to run the server as
        runas = "postgres"
        shutil.chown(root, "postgres")
    server = PostgresServer(bin_dir, root / "data", free_port(), runas)
    try:
        init = _run_pg([str(bin_dir / "initdb"), "-D", str(server.data), "-U", PG_USER, "--auth=trust", "-E", "UTF8",
                        "--no-sync"], runas)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stdout}{init.stderr}")
        # fsync off: a test server, thrown away at the end; kill -9 of a *client* is what the tests exercise.
        opts = (f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 "
                "-c synchronous_commit=off")
        start = server.pg_ctl("-o", opts, "-l", str(root / "server.log"), "-w", "-t", "60", "start")
        if start.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {start.stdout}{start.stderr}\n{(root / 'server.log').read_text()}")
        yield server
    finally:
        server.pg_ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: install Debian's `postgresql` "
                    "package (.ci/run does)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server as (Debian's package "
                        "creates it)")
    with start_postgres(bin_dir) as server:
        yield server


@dataclass
class S3Server:
    endpoint: str  # host:port, as DuckDB's ENDPOINT wants it

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=f"http://{self.endpoint}", aws_access_key_id=S3_KEY,
                            aws_secret_access_key=S3_SECRET, region_name=S3_REGION)

    def create_bucket(self, prefix: str = "lake") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"127.0.0.1:{port}")
    finally:
        server.stop()


@dataclass
class ServiceLake:
    home: Home
    database: str
    bucket: str
    env: dict[str, str]


def service_env(postgres_server: PostgresServer, s3_server: S3Server, database: str, bucket: str) -> dict[str, str]:
    return {
        "CHARTLAKE_LAKE_CATALOG": postgres_server.dsn(database),
        "CHARTLAKE_LAKE_DATA_PATH": f"s3://{bucket}/lake/",
        "CHARTLAKE_RAW_STORE_URL": f"s3://{bucket}/raw",
        "CHARTLAKE_S3_ENDPOINT": s3_server.endpoint, "CHARTLAKE_S3_KEY_ID": S3_KEY,
        "CHARTLAKE_S3_SECRET": S3_SECRET, "CHARTLAKE_S3_REGION": S3_REGION,
        "CHARTLAKE_S3_URL_STYLE": "path", "CHARTLAKE_S3_USE_SSL": "false",
    }


@pytest.fixture
def service_lake(tmp_path, postgres_server, s3_server, monkeypatch) -> ServiceLake:
    """A home whose lake catalog is a fresh Postgres database and whose data files and raw payloads go to a fresh
    bucket."""
    database, bucket = postgres_server.create_database(), s3_server.create_bucket()
    env = service_env(postgres_server, s3_server, database, bucket)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    home = Home(tmp_path / "home").ensure()
    monkeypatch.setenv("CHARTLAKE_HOME", str(home.root))
    return ServiceLake(home, database, bucket, env)
