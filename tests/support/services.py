"""Real external services for the tests: a PostgreSQL with PostGIS, a single-node SLURM, a STAC API.

PostGIS and SLURM need Debian packages and root (.ci/run installs them when CI=true), and so does the
STAC API's pgstac backend; its rustac backend runs anywhere. Outside CI a test that cannot have its
service skips and says what it needs; under CI=true it fails instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
SLURM_CONF = Path("/etc/slurm/slurm.conf")
CLUSTER = "ClusterName=tilewise\n"


def need(condition: bool, what: str) -> None:
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must provide {what} (.ci/run installs it)")
    pytest.skip(f"needs {what}; run as root with the Debian packages that .ci/run installs under CI=true")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostGIS:
    """initdb + postgres on 127.0.0.1:<free port>, trust auth, run as the `postgres` system user."""

    def __init__(self):
        need(os.geteuid() == 0, "root (PostgreSQL runs as the postgres user)")
        need(
            (PG_BIN / "initdb").exists() and POSTGIS_CONTROL.exists(),
            "Debian's postgresql-15 and postgresql-15-postgis-3",
        )
        # pytest's temporary folders are private to root: the server gets its own, owned by postgres
        self.root = root = Path(tempfile.mkdtemp(prefix="tilewise-pg-"))
        self.data, self.sock, self.port = root / "pgdata", root / "pgsock", free_port()
        for d in (self.data, self.sock):
            d.mkdir()
        for d in (root, self.data, self.sock):
            shutil.chown(d, "postgres")
        self._as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres"])
        self._as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-w",
                "-l",
                str(root / "pg.log"),
                "-o",
                f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1",
                "start",
            ]
        )
        self.dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def _as_postgres(self, cmd: list[str]) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True, cwd="/")

    def stop(self) -> None:
        self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for(seconds: float, check) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"gave up waiting after {seconds} s")


class Slurm:
    """A single-node SLURM on localhost (munge, slurmctld, slurmd; no accounting), as root.

    Follows shared/notes/slurm-on-localhost.md: node named localhost (slurmd -N), MinJobAge 300 so
    squeue can report finished jobs, proctrack/linuxproc and task/none (no cgroups, no systemd)."""

    def __init__(self):
        need(os.geteuid() == 0, "root (slurmd starts jobs as root)")
        need(
            all(shutil.which(t) for t in ("slurmctld", "slurmd", "munged", "sbatch", "squeue", "sinfo")),
            "Debian's slurmctld, slurmd, slurm-client and munge",
        )
        need(importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None, "the SLURM executor (make slurm)")
        ours = not SLURM_CONF.exists() or SLURM_CONF.read_text().startswith(CLUSTER)
        need(ours, f"no {SLURM_CONF} of another cluster")
        self.root = Path(tempfile.mkdtemp(prefix="tilewise-slurm-"))
        for d in ("pids", "state", "spool", "log"):
            (self.root / d).mkdir()
        for d in ("state", "log", "pids"):
            shutil.chown(self.root / d, "slurm")
        os.chmod(self.root, 0o755)
        cpus = os.cpu_count()
        mem_mb = int(int(open("/proc/meminfo").read().split("MemAvailable:")[1].split()[0]) / 1024 * 0.7)
        # jobs' own srun calls find the config only at the standard place; stop() removes it again, as
        # a slurm.conf naming a controller that is no longer running makes every later snakemake start
        # wait ~10 s (the SLURM executor plugin runs `scontrol show config` at import, which retries)
        SLURM_CONF.parent.mkdir(exist_ok=True)
        SLURM_CONF.write_text(f"""{CLUSTER}
SlurmctldHost=localhost
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation={self.root}/state
SlurmdSpoolDir={self.root}/spool
SlurmctldPidFile={self.root}/pids/slurmctld.pid
SlurmdPidFile={self.root}/pids/slurmd.pid
SlurmctldLogFile={self.root}/log/slurmctld.log
SlurmdLogFile={self.root}/log/slurmd.log
ReturnToService=2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
        key = Path("/etc/munge/munge.key")
        if not key.exists() or key.stat().st_size == 0:
            subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True)
        shutil.chown(key, "munge", "munge")
        os.chmod(key, 0o400)
        Path("/run/munge").mkdir(exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        subprocess.run(
            ["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--pid-file=/run/munge/munged.pid"], check=True
        )
        wait_for(10, lambda: subprocess.run(["munge", "-n"], capture_output=True).returncode == 0)
        subprocess.run(["/usr/sbin/slurmctld"], check=True)
        wait_for(30, lambda: b"is UP" in subprocess.run(["scontrol", "ping"], capture_output=True).stdout)
        subprocess.run(["/usr/sbin/slurmd", "-N", "localhost"], check=True)
        wait_for(
            60,
            lambda: (
                subprocess.run(
                    ["sinfo", "-h", "-n", "localhost", "-o", "%t"], capture_output=True, text=True
                ).stdout.strip()
                == "idle"
            ),
        )

    def stop(self) -> None:
        # by recorded pid, never by name: other daemons on the machine are not ours
        for pidfile in (self.root / "pids/slurmd.pid", self.root / "pids/slurmctld.pid", Path("/run/munge/munged.pid")):
            if pidfile.exists():
                try:
                    os.kill(int(pidfile.read_text().split()[0]), 15)
                except (ProcessLookupError, ValueError):
                    pass
        time.sleep(1)
        SLURM_CONF.unlink(missing_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)


# --- a STAC API server ---


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        return False


# Typed queryables, so that pgstac compares eo:cloud_cover as a number (untyped, it sorts "30.0" < "5.0").
STAC_QUERYABLES = {
    "type": "object",
    "properties": {
        "eo:cloud_cover": {"type": "number"},
        "s2:mgrs_tile": {"type": "string"},
        "grid:code": {"type": "string"},
        "s2:processing_baseline": {"type": "string"},
    },
}


class StacServer:
    """A real STAC API on 127.0.0.1 serving one collection and its items; `url` is its root.

    backend "rustac": `rustac serve` (the rustac wheel) in memory — no root, up in ~0.2 s; core and item
    search (collections, datetime, bbox, ids, paging) but no filter, query or sort extension, which its
    /conformance correctly does not list (a filter sent anyway matches nothing).
    backend "pgstac": stac-fastapi-pgstac — the Planetary Computer's own STAC backend — on a PostGIS
    started here (root, Debian packages, `make stac-server`): filter (CQL2), query and sort."""

    def __init__(self, collection: dict, items: list[dict], backend: str = "rustac", timeout: float = 60):
        self.root = Path(tempfile.mkdtemp(prefix=f"tilewise-stac-{backend}-"))
        self.proc: subprocess.Popen | None = None
        self.db: PostGIS | None = None
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        items = [{**item, "collection": collection["id"]} for item in items]
        if backend == "rustac":
            exe = Path(sys.executable).with_name("rustac")
            need(exe.exists(), "the rustac wheel (requirements.txt)")
            (self.root / "collection.json").write_text(json.dumps(collection))
            (self.root / "items.ndjson").write_text("".join(json.dumps(i) + "\n" for i in items))
            # --addr is where it listens and the base of the links it writes
            cmd = [str(exe), "serve", "--addr", f"127.0.0.1:{port}", "collection.json", "items.ndjson"]
            self._start(cmd, dict(os.environ))
        elif backend == "pgstac":
            need(
                all(_importable(m) for m in ("stac_fastapi.pgstac", "pypgstac", "uvicorn")),
                "stac-fastapi-pgstac and pypgstac (make stac-server)",
            )
            self.db = PostGIS()
            self._load_pgstac(collection, items)
            env = {
                **os.environ,
                "PGUSER": "postgres",
                "PGPASSWORD": "unused",  # trust authentication; stac-fastapi-pgstac requires the setting
                "PGHOST": "127.0.0.1",
                "PGPORT": str(self.db.port),
                "PGDATABASE": "postgres",
                "STAC_FASTAPI_TITLE": "tilewise test STAC API",
                "STAC_FASTAPI_DESCRIPTION": "stac-fastapi-pgstac on a throwaway PostGIS",
                "STAC_FASTAPI_LANDING_ID": "tilewise-test",
                "STAC_FASTAPI_VERSION": "0",
            }
            app = "stac_fastapi.pgstac.app:create_app"
            cmd = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port)]
            self._start([*cmd, "--log-level", "warning"], env)
        else:
            raise ValueError(f"unknown STAC server backend {backend!r}")
        self._wait(f"{self.url}/collections/{collection['id']}", timeout)

    def _load_pgstac(self, collection: dict, items: list[dict]) -> None:
        from pypgstac.db import PgstacDB
        from pypgstac.load import Loader, Methods
        from pypgstac.migrate import Migrate

        with PgstacDB(dsn=self.db.dsn) as db:
            Migrate(db).run_migration()  # creates the postgis, btree_gist and unaccent extensions too
            loader = Loader(db)
            loader.load_collections(iter([collection]), Methods.upsert)
            # after the collection exists (its id is a foreign key)
            db.connect().execute(
                "SELECT pgstac.upsert_queryables(%s::jsonb, %s::text[], NULL, false)",
                [json.dumps(STAC_QUERYABLES), [collection["id"]]],
            )
            loader.load_items(iter(items), Methods.upsert)

    def _start(self, cmd: list[str], env: dict) -> None:
        log = open(self.root / "server.log", "wb")  # noqa: SIM115 (kept open for the server's lifetime)
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def _wait(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"STAC server exited with {self.proc.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"STAC server not ready after {timeout} s: {self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: uvicorn's workers too; by pid, ours
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.db is not None:
            self.db.stop()
        shutil.rmtree(self.root, ignore_errors=True)
