"""Shared fixtures. The real broker fixture lives in tests/integration/broker_fixture.py."""

from __future__ import annotations

pytest_plugins = ["tests.integration.broker_fixture"]
