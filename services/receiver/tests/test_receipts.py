"""Receipts (`receiver.receipts`) on SQLite: one per event id, however often it is delivered."""

import pytest

from common.errors import InvalidInput
from receiver.receipts import Base, count_receipts, receipt_of, record_receipt

pytestmark = pytest.mark.unit


@pytest.fixture
def db(sqlite_sessions):
    return sqlite_sessions(Base.metadata)


def test_an_event_is_recorded_once_per_id(db):
    recorded = [
        record_receipt(db(), receipt_of({"id": "evt-1", "message": "hi"})),
        record_receipt(db(), receipt_of({"id": "evt-1", "message": "hi"})),  # redelivered
        record_receipt(db(), receipt_of({"id": 2})),
    ]

    assert recorded == [True, False, True]
    assert count_receipts(db()) == 2


@pytest.mark.parametrize("event", [{"message": "no id"}, "a string", ["a", "list"]])
def test_an_event_without_an_id_has_no_receipt(event):
    assert receipt_of(event) is None


@pytest.mark.parametrize("event_id", ["", "x" * 1000, "nul\x00", 1.5])
def test_an_id_that_cannot_be_a_key_is_invalid_input(event_id):
    with pytest.raises(InvalidInput):
        receipt_of({"id": event_id})


def test_an_event_that_is_not_strict_json_is_invalid_input():
    with pytest.raises(InvalidInput):
        receipt_of({"id": "evt-1", "value": float("nan")})
