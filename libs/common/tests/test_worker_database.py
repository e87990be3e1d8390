"""`WorkerDatabase` on PostgreSQL: a worker's transactions share one pooled connection, each commits."""

from sqlalchemy import Integer, event, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from common.db import WorkerDatabase, make_engine


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


def test_a_workers_transactions_check_out_and_ping_one_connection_and_each_commits(postgres):
    engine = make_engine(postgres())
    Base.metadata.create_all(engine)
    checkouts, pings = [], []
    event.listen(engine.pool, "checkout", lambda *args: checkouts.append(1))
    event.listen(engine, "engine_connect", lambda connection: pings.append(1))
    worker = WorkerDatabase(engine, sessionmaker(expire_on_commit=False))
    for number in (1, 2, 3):  # as time_consuming's worker: claim, uploaded, notified
        with worker.session.begin():
            worker.session.add(Row(id=number))
    with worker.session.begin():
        worker.session.add(Row(id=4))
        worker.session.flush()
    worker.session.begin()
    worker.session.add(Row(id=5))  # left uncommitted by the worker: rolled back when it ends
    worker.session.flush()
    worker.close()
    used = (len(checkouts), len(pings))
    checked_in = engine.pool.checkedin()

    with engine.connect() as connection:
        stored = connection.scalars(select(Row.id).order_by(Row.id)).all()
        # this test's own database only: other shards' tests share the server
        idle = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE state = 'idle in transaction' AND datname = current_database()"
            )
        )
        idle_in_transaction = idle.scalar()
    engine.dispose()

    assert stored == [1, 2, 3, 4]
    assert used == (1, 1)
    assert checked_in == 1  # the worker's connection went back to the pool
    assert idle_in_transaction == 0


def test_a_worker_that_never_uses_the_database_checks_out_nothing(postgres):
    engine = make_engine(postgres())
    checkouts = []
    event.listen(engine.pool, "checkout", lambda *args: checkouts.append(1))
    WorkerDatabase(engine, sessionmaker()).close()
    engine.dispose()

    assert checkouts == []
