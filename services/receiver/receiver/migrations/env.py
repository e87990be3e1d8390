"""Alembic environment for receiver: run by `migrate` and by DATABASE_AUTO_MIGRATE at start."""

from common.migrations import run_env
from receiver.receipts import Base

run_env(Base.metadata)
