"""Flow state hooks: a failed run raises an alert event in Prefect and leaves a PHI-free audit record."""

import logging
import re

from prefect import Flow
from prefect.client.schemas.objects import FlowRun
from prefect.events import emit_event
from prefect.states import State

from connectors.database import open_database
from connectors.store import append_audit
from data_contracts.models import AuditEvent
from rxinbox import clock
from rxinbox.settings import get_settings

log = logging.getLogger(__name__)

FAILED_EVENT = "rxinbox.flow.failed"
AUDIT_EVENT = "flow.failed"
ACTOR = "rxinbox.prefect"
# Prefect words a failure as "Flow run encountered an exception: TypeName: text"; only the type is
# kept because the text may quote mail content (an address, a subject).
_ERROR_TYPE = re.compile(r"exception:\s*([A-Za-z_][\w.]*)(?::|\s|$)")


def error_type(state: State) -> str:
    """The exception's class name from a failed state's message, never its text."""
    found = _ERROR_TYPE.search(state.message or "")
    return found.group(1) if found else state.type.value


def run_facts(flow: Flow, flow_run: FlowRun, state: State) -> dict:
    """What an operator needs to find the run: names and ids, no message content."""
    params = flow_run.parameters.get("params") if flow_run.parameters else None
    mailbox = params.get("mailbox") if isinstance(params, dict) else None
    return {
        "flow": flow.name,
        "flow_run_id": str(flow_run.id),
        "flow_run_name": flow_run.name,
        "deployment_id": str(flow_run.deployment_id) if flow_run.deployment_id else None,
        "state": state.name,
        "error_type": error_type(state),
        "mailbox": mailbox,
        "tags": sorted(flow_run.tags or []),
    }


def related_resources(flow_run: FlowRun) -> list[dict[str, str]]:
    related = [{"prefect.resource.id": f"prefect.flow.{flow_run.flow_id}", "prefect.resource.role": "flow"}]
    if flow_run.deployment_id:
        related.append({"prefect.resource.id": f"prefect.deployment.{flow_run.deployment_id}",
                        "prefect.resource.role": "deployment"})
    related += [{"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
                for tag in sorted(flow_run.tags or [])]
    return related


def alert_on_failure(flow: Flow, flow_run: FlowRun, state: State) -> None:
    """on_failure hook: emit `rxinbox.flow.failed` (automations can page someone) and audit `flow.failed`."""
    facts = run_facts(flow, flow_run, state)
    log.error("flow %s run %s failed with %s", facts["flow"], facts["flow_run_name"], facts["error_type"])
    emit_event(
        event=FAILED_EVENT,
        resource={"prefect.resource.id": f"prefect.flow-run.{flow_run.id}", "prefect.resource.name": flow_run.name},
        related=related_resources(flow_run),
        payload=facts,
    )
    # The event is out first: if the database is what failed, the audit write fails too, and Prefect
    # logs that hook error next to the run.
    engine = open_database(get_settings())
    audit = AuditEvent(at=clock.now(), actor=ACTOR, event=AUDIT_EVENT, subject=f"flow-run:{flow_run.id}", details=facts)
    with engine.begin() as conn:
        append_audit(conn, [audit])
