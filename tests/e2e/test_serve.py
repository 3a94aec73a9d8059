"""`rxinbox serve` brings up Prefect with every deployment, runs them on its worker and stops cleanly."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import func, select

from connectors.database import open_database
from connectors.mailbox_config import load_mailboxes
from connectors.model_store import load_or_train, model_path, model_version, training_rows
from connectors.store import CaseStore
from data_contracts import tables as t
from evals.mailgen import generate
from rxinbox.serve import CODE_ROOT, SWEEP_ENTRYPOINT, ServeError, deployment_spec, load_static, work_pools
from rxinbox.settings import get_settings

MODEL_CACHE = Path(tempfile.gettempdir()) / "rxinbox-test-models"

SERVE = [sys.executable, "-m", "rxinbox.cli", "serve"]
MESSAGES = 6
MAILBOXES = {"soendergade-inbox": ("soendergade", 120), "loeve-inbox": ("loeve", 300)}
POOL = "rxinbox-process"


def seed_triage_model(home: Path) -> None:
    """Copy the trained triage model into home: training it in every fresh home takes minutes on 2 cores.

    The cache is keyed by the model version (a hash of the training data, config and scikit-learn),
    so a stale artefact is never used.
    """
    load_or_train(MODEL_CACHE)
    source = model_path(MODEL_CACHE, model_version(training_rows()))
    (home / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, home / "models" / source.name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_mailboxes(home: Path, root: Path) -> None:
    for seed, name in enumerate(MAILBOXES, start=1):
        generate(root / name, MESSAGES, seed=seed)
    (home / "mailboxes.yaml").write_text(f"""\
pharmacies:
  - id: soendergade
    name: Søndergade Apotek
    mailboxes:
      - {{kind: local, name: soendergade-inbox, path: "{root / 'soendergade-inbox'}"}}
  - id: loeve
    name: Løve Apotek
    sweep_every_seconds: 300
    mailboxes:
      - {{kind: local, name: loeve-inbox, path: "{root / 'loeve-inbox'}"}}
""", encoding="utf-8")


def processes_with_home(home: Path) -> list[int]:
    """Our own processes (server, worker, flow runs) whose environment names this RXINBOX_HOME."""
    marker = f"RXINBOX_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except (PermissionError, FileNotFoundError, ProcessLookupError):
            continue
    return found


def wait_for_line(proc: subprocess.Popen, log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"rxinbox serve exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"no {text!r} within {timeout:.0f} s:\n{log.read_text(errors='replace')[-4000:]}")


def wait_final(client, run_id, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.read_flow_run(run_id)
        if run.state and run.state.is_final():
            return run
        time.sleep(1.0)
    pytest.fail(f"flow run {run_id} not finished within {timeout:.0f} s (state {run.state})")


@pytest.fixture
def served(home, tmp_path):
    """`rxinbox serve` on a free port over a home with two pharmacies' local mailboxes."""
    home.mkdir(parents=True, exist_ok=True)
    seed_triage_model(home)
    write_mailboxes(home, tmp_path / "mail")
    port = free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(RXINBOX_HOME=str(home), PREFECT_HOME=str(home / "prefect"))
    with log.open("wb") as out:
        proc = subprocess.Popen([*SERVE, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_for_line(proc, log, f"Prefect UI: http://127.0.0.1:{port}", timeout=150)
        yield proc, port, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in processes_with_home(home):
            os.kill(pid, signal.SIGKILL)


def test_spec_adds_one_sweep_per_configured_mailbox(home, tmp_path):
    home.mkdir(parents=True)
    write_mailboxes(home, tmp_path / "mail")
    spec = deployment_spec(load_static(), load_mailboxes(home / "mailboxes.yaml"))
    by_name = {d["name"]: d for d in spec["deployments"]}
    assert set(by_name) == {"local", "all-mailboxes", *MAILBOXES}
    loeve = by_name["loeve-inbox"]
    assert loeve["entrypoint"] == SWEEP_ENTRYPOINT and loeve["parameters"] == {"params": {"mailbox": "loeve-inbox"}}
    assert loeve["schedules"] == [{"interval": 300, "active": True}]
    assert loeve["tags"] == ["rxinbox", "pharmacy:loeve", "mailbox:loeve-inbox"]
    assert loeve["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    assert by_name["local"]["schedules"] == [{"interval": 120, "active": False}], "the template itself is unchanged"
    assert work_pools(spec) == [POOL] and "definitions" not in spec
    assert spec["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(CODE_ROOT)}}]


def test_spec_rejects_a_mailbox_name_prefect_cannot_use(home, tmp_path):
    home.mkdir(parents=True)
    write_mailboxes(home, tmp_path / "mail")
    path = home / "mailboxes.yaml"
    path.write_text(path.read_text().replace("name: loeve-inbox", "name: loeve/inbox"))
    with pytest.raises(ServeError, match="cannot name a Prefect deployment"):
        deployment_spec(load_static(), load_mailboxes(path))


@pytest.mark.e2e
@pytest.mark.slow
def test_serve_deploys_everything_runs_it_and_stops(served, home):
    proc, port, log = served
    api = f"http://127.0.0.1:{port}/api"
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200, "the Prefect UI is served"
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        pool = client.read_work_pool(POOL)
        assert pool.type == "process"
        flows = {f.id: f.name for f in client.read_flows()}
        deployments = {f"{flows[d.flow_id]}/{d.name}": d for d in client.read_deployments()}
        expected = {"mailbox-sweep/local", "chain-sweep/all-mailboxes"} | {f"mailbox-sweep/{m}" for m in MAILBOXES}
        assert set(deployments) == expected
        for deployment in deployments.values():
            assert deployment.work_pool_name == POOL
            assert deployment.global_concurrency_limit is not None and deployment.global_concurrency_limit.limit == 1
            assert deployment.concurrency_options.collision_strategy == "ENQUEUE"
            schema = json.dumps(deployment.parameter_openapi_schema)
            assert "params" in deployment.parameter_openapi_schema["properties"] and "batch_size" in schema, \
                "parameters are a pydantic model, so the UI shows a form"
        for name, (pharmacy, every) in MAILBOXES.items():
            deployment = deployments[f"mailbox-sweep/{name}"]
            assert deployment.parameters == {"params": {"mailbox": name}}
            assert {"rxinbox", f"pharmacy:{pharmacy}", f"mailbox:{name}"} <= set(deployment.tags)
            [schedule] = deployment.schedules
            assert schedule.active and schedule.schedule.interval == timedelta(seconds=every)
        [local_schedule] = deployments["mailbox-sweep/local"].schedules
        assert not local_schedule.active and local_schedule.schedule.interval == timedelta(seconds=120)

        sweep = client.create_flow_run_from_deployment(deployments["mailbox-sweep/soendergade-inbox"].id)
        failing = client.create_flow_run_from_deployment(
            deployments["chain-sweep/all-mailboxes"].id, parameters={"params": {"mailboxes": ["no-such-mailbox"]}})
        swept = wait_final(client, sweep.id, timeout=120)
        assert swept.state.is_completed(), f"{swept.state.message}\n{log.read_text(errors='replace')[-4000:]}"
        failed = wait_final(client, failing.id, timeout=120)
        assert failed.state.is_failed()
        deadline = time.monotonic() + 30
        alerts = []
        while not alerts and time.monotonic() < deadline:
            page = client.read_events(EventFilter(event=EventNameFilter(name=["rxinbox.flow.failed"])), limit=50)
            alerts = [e for e in page.events if e.resource.id == f"prefect.flow-run.{failing.id}"]
            time.sleep(1.0)
        assert alerts, "the on_failure hook raised the alert event"
        assert alerts[0].payload["error_type"] == "ValueError"

    engine = open_database(get_settings())
    with engine.connect() as conn:
        swept_messages = conn.execute(select(func.count()).select_from(t.messages)
                                      .where(t.messages.c.mailbox == "soendergade-inbox")).scalar()
    assert swept_messages == MESSAGES, "the worker ran the deployment's sweep of its mailbox"
    audit = [e for e in CaseStore(engine).audit_events() if e.event == "flow.failed"]
    assert [e.subject for e in audit] == [f"flow-run:{failing.id}"]
    assert audit[0].details["error_type"] == "ValueError" and "no-such-mailbox" not in json.dumps(audit[0].details)

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=90) == 0, log.read_text(errors="replace")[-4000:]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{api}/health", timeout=2)
    assert processes_with_home(home) == [], "the server, the worker and their runs all stopped"
