"""Test helpers that are real parts (servers, fixtures), not mocks."""
