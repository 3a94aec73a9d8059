"""Retry policy of the sweep's tasks: back off on faults that pass, fail at once on ones that do not."""

from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import Task, exponential_backoff

from connectors.graph_http import GraphAuthError, GraphError
from connectors.imap_session import ImapLoginError
from connectors.llm import LLMConfigError
from connectors.smtp_sender import SmtpLoginError
from core.crypto import DecryptionError
from policy_rules.yaml_errors import RuleFileError

# Retrying cannot fix refused credentials or a wrong configuration (a bad rule file, a mailbox name
# missing from mailboxes.yaml, the wrong PHI key): the task fails at once, so the flow's failure
# alert goes out now rather than after half a minute of retries.
PERMANENT_ERRORS = (ImapLoginError, SmtpLoginError, GraphAuthError, RuleFileError, LLMConfigError, DecryptionError,
                    KeyError)


def is_permanent(error: BaseException) -> bool:
    # Graph throttling longer than a sweep should wait is left to the next sweep (graph_http says so).
    throttled = isinstance(error, GraphError) and error.status == 429
    return throttled or isinstance(error, PERMANENT_ERRORS)


def worth_retrying(_task: Task, _task_run: TaskRun, state: State) -> bool:
    """Prefect retry_condition_fn: retry a failed task unless its error is one retrying cannot fix."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # the failure's result cannot be read back: keep the retry policy
        return True
    return not (isinstance(error, BaseException) and is_permanent(error))


# Jittered exponential backoff, so workers that failed together (a server restart) do not retry in step.
MAILBOX_RETRIES = dict(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=4), retry_jitter_factor=0.5,
                       retry_condition_fn=worth_retrying, cache_policy=NO_CACHE)  # about 4, 8, 16 s
DATABASE_RETRIES = dict(retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=1), retry_jitter_factor=0.5,
                        retry_condition_fn=worth_retrying, cache_policy=NO_CACHE)  # about 1, 2 s
