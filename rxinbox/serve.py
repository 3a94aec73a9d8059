"""`rxinbox serve`: a local Prefect server, the process work pool, every deployment and a worker."""

import copy
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import httpx
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.workers.process import ProcessWorker

import flows
from connectors.database import open_database
from connectors.mailbox_config import MailboxesFile, PharmacyConfig, load_mailboxes
from rxinbox.environment import TELEMETRY_OFF
from rxinbox.settings import Settings
from tasks.context import mailboxes_file

log = logging.getLogger(__name__)

# Entrypoints in prefect.yaml are relative to the directory holding the flows package.
CODE_ROOT = Path(flows.__file__).resolve().parent.parent
STATIC_FILE = CODE_ROOT / "prefect.yaml"
SWEEP_ENTRYPOINT = "flows/mailbox_sweep.py:mailbox_sweep"
SWEEP_TEMPLATE = "local"
GENERATED_FILE = "rxinbox-deployments.yaml"
STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0
_BANNED_IN_NAMES = set("/%&<>")


class _PlainDumper(yaml.SafeDumper):
    """Writes shared sub-trees (anchors resolved on load) in full instead of as &id001 aliases."""

    def ignore_aliases(self, data) -> bool:
        return True


class ServeError(RuntimeError):
    """`rxinbox serve` cannot start or a process it runs stopped; the message says which and why."""


def load_static(path: Path = STATIC_FILE) -> dict:
    """The repository's prefect.yaml, anchors resolved."""
    if not path.is_file():
        raise ServeError(f"{path} not found: run rxinbox serve from a checkout of the rxinbox repository")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(spec, dict) or not isinstance(spec.get("deployments"), list):
        raise ServeError(f"{path} has no `deployments:` list")
    return spec


def mailbox_deployment(template: dict, pharmacy: PharmacyConfig, mailbox_name: str) -> dict:
    """A mailbox-sweep deployment for one configured mailbox, built from the static sweep entry."""
    if _BANNED_IN_NAMES & set(mailbox_name):
        raise ServeError(f"mailbox name {mailbox_name!r} cannot name a Prefect deployment (no / % & < >)")
    deployment = copy.deepcopy({k: v for k, v in template.items() if k in ("entrypoint", "work_pool", "concurrency_limit")})
    schedule = copy.deepcopy((template.get("schedules") or [{}])[0])
    schedule.update(interval=pharmacy.sweep_every_seconds, active=True)
    tags = [t for t in template.get("tags", []) if not t.startswith(("pharmacy:", "mailbox:"))]
    deployment.update(
        name=mailbox_name,
        description=f"Sweep mailbox {mailbox_name} of {pharmacy.name} every {pharmacy.sweep_every_seconds} s.",
        parameters={"params": {"mailbox": mailbox_name}},
        schedules=[schedule],
        tags=tags + [f"pharmacy:{pharmacy.id}", f"mailbox:{mailbox_name}"],
    )
    return deployment


def deployment_spec(static: dict, mailboxes: MailboxesFile | None, code_root: Path = CODE_ROOT) -> dict:
    """The prefect.yaml to deploy: the static deployments plus one sweep per configured mailbox."""
    spec = {k: copy.deepcopy(v) for k, v in static.items() if k != "definitions"}
    templates = [d for d in static["deployments"] if d.get("entrypoint") == SWEEP_ENTRYPOINT and d.get("name") == SWEEP_TEMPLATE]
    if not templates:
        raise ServeError(f"prefect.yaml needs the `{SWEEP_TEMPLATE}` deployment of {SWEEP_ENTRYPOINT} as the mailbox template")
    generated = [mailbox_deployment(templates[0], p, m.name) for p in (mailboxes.pharmacies if mailboxes else []) for m in p.mailboxes]
    taken = {d["name"] for d in generated}
    # A configured mailbox named like a static sweep deployment replaces it.
    kept = [d for d in spec["deployments"] if not (d.get("entrypoint") == SWEEP_ENTRYPOINT and d.get("name") in taken)]
    spec["deployments"] = kept + generated
    spec["pull"] = [{"prefect.deployments.steps.set_working_directory": {"directory": str(code_root)}}]
    return spec


def work_pools(spec: dict) -> list[str]:
    return sorted({d["work_pool"]["name"] for d in spec["deployments"] if d.get("work_pool")})


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) != 0


class LocalPrefect:
    """The Prefect server and worker processes of `rxinbox serve`, each in its own process group."""

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.settings, self.host, self.port = settings, host, port
        self.procs: list[tuple[str, subprocess.Popen]] = []

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    def env(self) -> dict[str, str]:
        """Children talk to this server, keep Prefect's state in RXINBOX_HOME and never phone home."""
        return {**os.environ, **TELEMETRY_OFF, "PREFECT_HOME": str(self.settings.prefect_home),
                "PREFECT_API_URL": self.api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_LOGGING_LEVEL": self.settings.log_level.upper(), "RXINBOX_HOME": str(self.settings.home)}

    def prefect(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "prefect", *args]

    def spawn(self, name: str, *args: str) -> None:
        # A new session: Ctrl-C reaches only `rxinbox serve`, which then stops the children in order.
        proc = subprocess.Popen(self.prefect(*args), cwd=CODE_ROOT, env=self.env(), start_new_session=True)
        self.procs.append((name, proc))
        log.info("started Prefect %s (pid %d)", name, proc.pid)

    def start_server(self, timeout: float = STARTUP_TIMEOUT) -> None:
        if not port_is_free(self.host, self.port):
            raise ServeError(f"port {self.port} on {self.host} is in use (another Prefect server?); choose one with --port")
        self.spawn("server", "server", "start", "--host", self.host, "--port", str(self.port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_children()
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise ServeError(f"the Prefect server did not answer on {self.api_url}/health within {timeout:.0f} s")

    def deploy(self, spec_path: Path) -> None:
        """Apply every deployment in the spec with Prefect's own `prefect deploy`."""
        cmd = self.prefect("deploy", "--no-prompt", "--all", "--prefect-file", str(spec_path))
        done = subprocess.run(cmd, cwd=CODE_ROOT, env=self.env(), capture_output=True, text=True, timeout=600)
        log.debug("prefect deploy output:\n%s", done.stdout)
        if done.returncode != 0:
            raise ServeError(f"prefect deploy failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")

    def start_worker(self, pool: str) -> None:
        self.spawn(f"worker ({pool})", "worker", "start", "--pool", pool, "--type", "process",
                   "--name", f"rxinbox-{socket.gethostname()}-{pool}", "--install-policy", "never")

    def check_children(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise ServeError(f"the Prefect {name} exited with code {proc.returncode}")

    def wait(self) -> None:
        """Block until Ctrl-C (KeyboardInterrupt) or until a child dies (ServeError)."""
        while True:
            self.check_children()
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the worker(s) before the server, so runs in flight can report their final state."""
        for name, proc in reversed(self.procs):
            for sig, grace in ((signal.SIGINT, STOP_TIMEOUT), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                if proc.poll() is not None:
                    break
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    log.warning("Prefect %s did not stop on %s", name, sig.name)
            log.info("stopped Prefect %s", name)
        self.procs.clear()


def ensure_work_pools(api_url: str, pools: list[str]) -> None:
    """Create each process work pool with Prefect's default process job template, once."""
    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        for name in pools:
            template = ProcessWorker.get_default_base_job_template()
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
                log.info("created process work pool %s", name)
            except ObjectAlreadyExists:
                existing = client.read_work_pool(name)
                if existing.type != "process":
                    raise ServeError(f"work pool {name!r} exists with type {existing.type!r}, not 'process'") from None


def reconcile_deployments(api_url: str, spec: dict) -> list[str]:
    """Check every deployment in the spec exists; delete sweeps of mailboxes no longer configured."""
    wanted = {(d["entrypoint"], d["name"]) for d in spec["deployments"]}
    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        flow_names = {f.id: f.name for f in client.read_flows()}
        present = client.read_deployments()
        for deployment in present:
            if deployment.entrypoint == SWEEP_ENTRYPOINT and (deployment.entrypoint, deployment.name) not in wanted:
                client.delete_deployment(deployment.id)
                log.info("deleted deployment of an unconfigured mailbox: %s", deployment.name)
        found = {(d.entrypoint, d.name): f"{flow_names.get(d.flow_id, '?')}/{d.name}" for d in present}
    missing = sorted(f"{e} ({n})" for e, n in wanted - found.keys())
    if missing:
        raise ServeError(f"prefect deploy did not create: {', '.join(missing)}")
    return sorted(found[key] for key in wanted)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def serve(settings: Settings, port: int = 4200, host: str = "127.0.0.1", worker: bool = True,
          ready: Callable[[str, list[str]], None] = lambda url, names: None) -> None:
    """Run the server, deploy everything, run a worker; return after Ctrl-C/SIGTERM, all children stopped."""
    settings.ensure_dirs()
    # Migrate and create the PHI key now: parallel first runs of several mailboxes would race for it.
    open_database(settings)
    config_path = mailboxes_file(settings)
    mailboxes = load_mailboxes(config_path) if config_path.exists() else None
    if mailboxes is None:
        log.info("no %s: deploying the built-in deployments only", config_path)
    spec = deployment_spec(load_static(), mailboxes)
    spec_path = settings.prefect_home / GENERATED_FILE
    spec_path.write_text(yaml.dump(spec, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True), encoding="utf-8")
    signal.signal(signal.SIGTERM, _interrupt)
    stack = LocalPrefect(settings, host, port)
    try:
        stack.start_server()
        ensure_work_pools(stack.api_url, work_pools(spec))
        stack.deploy(spec_path)
        names = reconcile_deployments(stack.api_url, spec)
        if worker:
            for pool in work_pools(spec):
                stack.start_worker(pool)
        ready(stack.ui_url, names)
        stack.wait()
    except KeyboardInterrupt:
        log.info("stopping rxinbox serve")
    finally:
        # A second Ctrl-C must not abandon the children half-stopped; stop() is bounded by its timeouts.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stack.stop()
        finally:
            signal.signal(signal.SIGINT, previous)
