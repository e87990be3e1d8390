"""The pytest11 entry point of the project's test kit, as nameko ships its own fixtures.

Installed with `libs/testing`, pytest loads it on its own: no conftest imports it. The fixtures
(`testkit.fixtures`) are registered here, at configure time, after every entry-point plugin: so this
run's `amqp_uri` (one vhost for the whole run) overrides nameko's (one per test), whatever order
the entry points load in. Where the broker and its management API are comes from nameko's own
options, `--amqp-uri` and `--rabbit-ctl-uri`.
"""

import os


def pytest_configure(config):
    from testkit import fixtures

    # Outside a fixture (the local stack's readiness, a private broker's helpers), RabbitAdmin()
    # reads the same management API from the environment.
    os.environ.setdefault("RABBIT_CTL_URI", config.getoption("RABBIT_API_URI"))
    config.pluginmanager.register(fixtures, "testkit.fixtures")
