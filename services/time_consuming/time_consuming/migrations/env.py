"""Alembic environment for time_consuming: run by `migrate` and by DATABASE_AUTO_MIGRATE at start."""

from common.migrations import run_env
from time_consuming.jobs import Base

run_env(Base.metadata)
