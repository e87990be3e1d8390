"""The project's command line (`stack`): run docker-compose.yml's services as local processes."""

import testkit  # noqa: F401 -- first: it quiets nameko 2.14's import-time deprecation warnings
