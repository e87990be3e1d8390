"""Receipts (`receiver.receipts`) on SQLite: one per event id, however often it is delivered."""

import pytest

from common.errors import InvalidInput
from receiver.receipts import Base, count_receipts, record_receipt

pytestmark = pytest.mark.unit


@pytest.fixture
def db(sqlite_sessions):
    return sqlite_sessions(Base.metadata)


def test_an_event_is_recorded_once_per_id_and_only_with_an_id(db):
    recorded = [
        record_receipt(db(), {"id": "evt-1", "message": "hi"}),
        record_receipt(db(), {"id": "evt-1", "message": "hi"}),  # redelivered
        record_receipt(db(), {"id": 2}),
        record_receipt(db(), {"message": "no id"}),
    ]

    assert recorded == [True, False, True, False]
    assert count_receipts(db()) == 2


@pytest.mark.parametrize("event_id", ["", "x" * 1000, "nul\x00", 1.5])
def test_an_id_that_cannot_be_a_key_is_invalid_input(db, event_id):
    with pytest.raises(InvalidInput):
        record_receipt(db(), {"id": event_id})
