"""The embedded default's SQLite backend queues writers on a file lock (annotation_site/sqlite3).

Each test opens its own SQLite file through the backend, whatever database the suite runs on
(PostgreSQL in CI): the lock is the backend's, not the configured database's.
"""

from __future__ import annotations

import fcntl
import os
import threading

import pytest
from django.db import OperationalError, connections, transaction
from django.db.utils import ConnectionHandler

ALIAS = "sqlite_writer_lock_test"


@pytest.fixture
def sqlite(tmp_path, django_db_blocker):
    """Connections to one SQLite file through the project's backend, as the settings make
    them (IMMEDIATE transactions), and a probe of its writer lock."""
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "annotation_site.sqlite3",
                "NAME": str(tmp_path / "db.sqlite3"),
                "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30},
            }
        }
    )
    opened = []

    def connect():
        # A handler keeps one connection per thread: a new handler per caller, same file.
        conn = ConnectionHandler(handler.settings)["default"]
        opened.append(conn)
        return conn

    def lock_is_free() -> bool:
        probe = os.open(tmp_path / "db.sqlite3.writer-lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(probe)  # also lets go of the lock it took

    with django_db_blocker.unblock():
        first = connect()
        with first.cursor() as cursor:
            cursor.execute("CREATE TABLE votes (label TEXT)")
        yield connect, lock_is_free
        for conn in opened:
            if conn.connection is not None:  # a thread's own closed it there
                conn.close()


def _begin(conn) -> None:
    """What ``transaction.atomic`` does on entering its outermost block on SQLite."""
    conn.ensure_connection()
    conn._start_transaction_under_autocommit()


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_a_transaction_holds_the_writer_lock_until_it_ends(sqlite, end):
    connect, lock_is_free = sqlite
    conn = connect()
    assert lock_is_free()

    _begin(conn)
    with conn.cursor() as cursor:
        cursor.execute("INSERT INTO votes VALUES ('fear')")
    assert not lock_is_free()

    getattr(conn, end)()
    assert lock_is_free()


def test_a_second_writer_waits_on_the_lock_and_goes_on_when_the_first_commits(sqlite):
    connect, _ = sqlite
    first = connect()
    _begin(first)
    with first.cursor() as cursor:
        cursor.execute("INSERT INTO votes VALUES ('fear')")
    started, done = threading.Event(), threading.Event()
    seen: list[int] = []

    def second_writer():
        conn = connect()
        started.set()
        _begin(conn)  # queues on the file lock while the first holds it
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM votes")
            seen.append(cursor.fetchone()[0])
            cursor.execute("INSERT INTO votes VALUES ('disgust')")
        conn.commit()
        conn.close()
        done.set()

    thread = threading.Thread(target=second_writer)
    thread.start()
    started.wait(10)
    assert not done.wait(0.3)  # still queued behind the first transaction

    first.commit()
    thread.join(10)
    assert done.is_set() and seen == [1]  # it began after the first's row was committed
    with first.cursor() as cursor:
        cursor.execute("SELECT label FROM votes ORDER BY rowid")
        assert [row[0] for row in cursor.fetchall()] == ["fear", "disgust"]


def test_transaction_atomic_takes_the_lock_and_lets_it_go(sqlite):
    # Through Django's own atomic(), nested blocks (savepoints) included.
    connect, lock_is_free = sqlite
    conn = connect()
    connections.settings[ALIAS] = conn.settings_dict
    connections[ALIAS] = conn
    try:
        with transaction.atomic(using=ALIAS):
            with conn.cursor() as cursor:
                cursor.execute("INSERT INTO votes VALUES ('happy')")
            with transaction.atomic(using=ALIAS):
                assert not lock_is_free()
            assert not lock_is_free()
        assert lock_is_free()
        with pytest.raises(ZeroDivisionError), transaction.atomic(using=ALIAS):
            assert not lock_is_free()
            raise ZeroDivisionError("the block fails")
        assert lock_is_free()
    finally:
        del connections[ALIAS]
        del connections.settings[ALIAS]


def test_a_wait_for_the_lock_ends_with_the_connections_timeout(sqlite, tmp_path):
    # As SQLite's own busy wait does: "database is locked", and the waiter holds nothing.
    connect, lock_is_free = sqlite
    first = connect()
    _begin(first)
    impatient = ConnectionHandler(
        {
            "default": {
                **first.settings_dict,
                "OPTIONS": {**first.settings_dict["OPTIONS"], "timeout": 0.05},
            }
        }
    )["default"]
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            _begin(impatient)
        first.rollback()
        assert lock_is_free()
    finally:
        impatient.close()
