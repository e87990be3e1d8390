"""`insert_if_absent`: one INSERT that skips a duplicate key, on SQLite and on PostgreSQL."""

import pytest
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common.db import insert_if_absent, make_engine


@pytest.fixture(params=[pytest.param("SQLite", marks=pytest.mark.unit), "PostgreSQL"])
def database_url(request, tmp_path):
    if request.param == "SQLite":
        return f"sqlite:///{tmp_path}/insert.sqlite3"
    return request.getfixturevalue("postgres")()


def test_insert_if_absent_inserts_once_and_the_transaction_goes_on(database_url):
    class Base(DeclarativeBase):
        pass

    class Row(Base):
        __tablename__ = "rows"
        key: Mapped[str] = mapped_column(String(10), primary_key=True)
        value: Mapped[int]

    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        inserted = [
            insert_if_absent(session, Row, key="a", value=1),
            insert_if_absent(session, Row, key="a", value=2),  # PostgreSQL would abort the transaction here
        ]
        session.add(Row(key="b", value=3))  # so this would fail, were the duplicate an error
    with Session(engine) as session:
        rows = session.execute(select(Row.key, Row.value).order_by(Row.key)).all()
    engine.dispose()

    assert inserted == [True, False]
    assert rows == [("a", 1), ("b", 3)]
