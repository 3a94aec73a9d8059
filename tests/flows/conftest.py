"""Flow tests run against one Prefect test server for the session."""

import pytest


@pytest.fixture(autouse=True)
def _harness(prefect_harness):
    yield
