"""Shared test set-up. Each group of fixtures lives in its own plugin module under tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.servers",
    "tests.fixtures.images",
    "tests.fixtures.ktes_server",
    "tests.fixtures.k8s",
    "tests.fixtures.browser",
    "tests.fixtures.helm",
    "tests.fixtures.oidc",
]
