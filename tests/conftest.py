"""Fixtures shared across test modules, registered once here so pytest finds them by name."""
from tests.support.fake_llm_server import fake_llm

__all__ = ["fake_llm"]
