"""Sweep tasks retry faults that pass (a dropped connection), never ones retrying cannot fix (refused credentials)."""

import pytest
from prefect import flow, task
from prefect.states import Failed
from sqlalchemy.exc import OperationalError

from connectors.graph_http import GraphAuthError, GraphError, GraphUnreachable
from connectors.imap_session import ImapLoginError
from connectors.mailbox import MailboxError
from connectors.smtp_sender import SmtpLoginError
from core.crypto import DecryptionError
from policy_rules.yaml_errors import RuleFileError
from tasks import outbox, retry_policy, sweep

PERMANENT = [
    ImapLoginError("IMAP login failed"), SmtpLoginError("SMTP login failed"),
    GraphAuthError("Graph refused the token", 401, "InvalidAuthenticationToken"),
    GraphError("throttled for 600 s; leaving it to the next sweep", 429, "TooManyRequests"),
    KeyError("no mailbox named 'x' in mailboxes.yaml"), DecryptionError("wrong PHI key"),
    RuleFileError("mailboxes.yaml", 4, "pharmacies.0.mailboxes.0.kind", "unknown kind"),
]
TRANSIENT = [
    ConnectionError("reset by peer"), TimeoutError(), MailboxError("IMAP fetch failed after 3 attempts"),
    GraphUnreachable("cannot reach Microsoft Graph"), GraphError("HTTP 503", 503),
    OperationalError("INSERT", {}, Exception("database is locked")),
]
RETRYING_TASKS = [sweep.reconcile_marks, sweep.list_new, sweep.fetch, sweep.commit, sweep.mark, sweep.record_sweep,
                  outbox.deliver]


def failed(error: BaseException):
    # The state Prefect's task engine hands to retry_condition_fn when the task raised.
    return Failed(data=error, message=f"Task run encountered unexpected exception: {error!r}")


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_errors_retrying_cannot_fix_are_not_retried(error):
    assert retry_policy.worth_retrying(None, None, failed(error)) is False


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_passing_faults_are_retried(error):
    assert retry_policy.worth_retrying(None, None, failed(error)) is True


@pytest.mark.parametrize("retrying", RETRYING_TASKS, ids=lambda t: t.name)
def test_sweep_tasks_back_off_exponentially_with_jitter(retrying):
    assert retrying.retry_condition_fn is retry_policy.worth_retrying
    assert retrying.retries >= 2 and retrying.retry_jitter_factor > 0
    delays = retrying.retry_delay_seconds
    assert all(later == 2 * earlier for earlier, later in zip(delays, delays[1:]))


def test_a_task_fails_at_once_on_refused_credentials_and_retries_a_dropped_connection(prefect_harness):
    attempts: list[str] = []

    @task(**{**retry_policy.MAILBOX_RETRIES, "retry_delay_seconds": 0, "retry_jitter_factor": None})
    def flaky(error: BaseException) -> None:
        attempts.append(type(error).__name__)
        raise error

    @flow
    def run(error: BaseException) -> None:
        flaky(error)

    with pytest.raises(ImapLoginError):
        run(ImapLoginError("IMAP login failed"))
    assert attempts == ["ImapLoginError"]
    attempts.clear()
    with pytest.raises(ConnectionError):
        run(ConnectionError("reset by peer"))
    assert attempts == ["ConnectionError"] * (1 + retry_policy.MAILBOX_RETRIES["retries"])
