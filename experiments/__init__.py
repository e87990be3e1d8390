"""The article's experiments: see experiments.cli (the `experiments` command) and docs/experiments.md."""

import testkit  # noqa: F401 -- first: it quiets nameko 2.14's import-time deprecation warnings
