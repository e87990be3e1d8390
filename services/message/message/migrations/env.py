"""Alembic environment for message: run by `migrate` and by DATABASE_AUTO_MIGRATE at start."""

from common.migrations import run_env
from message.messages import Base

run_env(Base.metadata)
