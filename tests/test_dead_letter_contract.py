"""What every ``DeadLetterStore`` backend promises the collector and the dead-letter job.

Each test runs against the embedded SQLite store and against ``S3DeadLetterStore`` over HTTP on
the session's local server, each time with a fresh, empty bucket. Positions are opaque: a test
only hands back a position the store gave it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from features.config import S3DeadLetterConfig, SqliteDeadLetterConfig
from features.deadletter import DeadLetter, DeadLetterStore, open_dead_letter_store


@pytest.fixture(params=["sqlite", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeadLetterStore]:
    config: SqliteDeadLetterConfig | S3DeadLetterConfig
    if request.param == "sqlite":
        config = SqliteDeadLetterConfig(path=str(tmp_path / "dead.db"))
    else:
        config = S3DeadLetterConfig(
            bucket=f"dead-{uuid.uuid4().hex[:12]}",
            endpoint_url=request.getfixturevalue("aws_endpoint"),
            create_if_missing=True,
        )
    s = open_dead_letter_store(config)
    yield s
    s.close()


def letter(n: int) -> DeadLetter:
    return DeadLetter(
        received_at=1_700_000_000_000 + n,
        reason=f"event_type: unknown value 'boom-{n}'",
        raw='{"event_type": "boom", "note": "ünïcødé ✓\\n"}',
        game_id="demo",
        index=n,
        request_id=f"req-{n // 3}",
    )


def _put_in_three_requests(store: DeadLetterStore) -> list[DeadLetter]:
    """Seven letters over three puts, so that positions fall inside and between puts."""
    letters = [letter(n) for n in range(7)]
    store.put(letters[:3])
    store.put(letters[3:4])
    store.put(letters[4:])
    return letters


def test_read_returns_every_letter_in_put_order(store: DeadLetterStore) -> None:
    letters = _put_in_three_requests(store)

    assert [x for _, x in store.read(None, 100)] == letters


def test_letters_round_trip_with_every_field(store: DeadLetterStore) -> None:
    bare = DeadLetter(received_at=1, reason="body is not JSON", raw="\x00{not json")
    store.put([bare, letter(1)])

    assert [x for _, x in store.read(None, 10)] == [bare, letter(1)]


def test_read_resumes_after_any_position_it_returned(store: DeadLetterStore) -> None:
    letters = _put_in_three_requests(store)
    positions = [pos for pos, _ in store.read(None, 100)]

    for i, pos in enumerate(positions):
        assert [x for _, x in store.read(pos, 100)] == letters[i + 1 :]


def test_read_returns_at_most_limit_letters_oldest_first(store: DeadLetterStore) -> None:
    letters = _put_in_three_requests(store)

    assert [x for _, x in store.read(None, 2)] == letters[:2]


def test_reading_page_by_page_yields_every_letter_once(store: DeadLetterStore) -> None:
    letters = _put_in_three_requests(store)
    seen: list[DeadLetter] = []
    after = None

    while page := store.read(after, 2):
        seen.extend(x for _, x in page)
        after = page[-1][0]

    assert seen == letters


def test_positions_are_the_same_on_every_read(store: DeadLetterStore) -> None:
    _put_in_three_requests(store)

    assert store.read(None, 100) == store.read(None, 100)


def test_letters_put_after_a_read_follow_its_last_position(store: DeadLetterStore) -> None:
    store.put([letter(0)])
    ((pos, _),) = store.read(None, 10)

    store.put([letter(1), letter(2)])

    assert [x for _, x in store.read(pos, 10)] == [letter(1), letter(2)]


def test_read_of_an_empty_store_is_empty(store: DeadLetterStore) -> None:
    assert store.read(None, 10) == []


def test_reading_after_the_last_letter_returns_nothing(store: DeadLetterStore) -> None:
    _put_in_three_requests(store)
    last = store.read(None, 100)[-1][0]

    assert store.read(last, 10) == []


def test_put_of_no_letters_stores_nothing(store: DeadLetterStore) -> None:
    store.put([])

    assert store.read(None, 10) == []
