"""Fixtures shared across test modules, registered once here so pytest finds them by name."""
from tests.support.fake_llm_server import fake_llm
from tests.support.smoke_run import smoke_run, smoke_run_result

__all__ = ["fake_llm", "smoke_run", "smoke_run_result"]
