"""A few idle ADBC PostgreSQL connections kept for the next load.

Opening an ADBC PostgreSQL connection costs about 90 ms on this machine (the driver reads the
server's type catalogue), ten times a psycopg connect and most of a small slice's load. The
PostgreSQL warehouse therefore takes a connection from here and gives it back once its
transaction has ended (committed or rolled back). A connection that saw an error is closed,
never kept. A kept connection is checked with ``SELECT 1`` before it is handed out again: one
the server dropped meanwhile (restart, idle timeout) is closed and replaced by a new one, so the
load never sees it.
"""

from __future__ import annotations

import threading

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc_pg

MAX_IDLE = 4  # connections kept idle per warehouse object


class AdbcPool:
    """Idle connections to one database, at most ``max_idle`` of them."""

    def __init__(self, url: str, *, max_idle: int = MAX_IDLE):
        self._url = url
        self._max_idle = max_idle
        self._idle: list[adbc_pg.Connection] = []
        self._lock = threading.Lock()

    def take(self) -> adbc_pg.Connection:
        """A live connection with no transaction begun yet: a kept one that answers, else a new one."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return adbc_pg.connect(self._url)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                    cur.fetchall()
                conn.rollback()
                return conn
            except adbc_driver_manager.Error:  # dropped by the server while idle
                _close_quietly(conn)

    def give_back(self, conn: adbc_pg.Connection, *, healthy: bool) -> None:
        """Keep ``conn`` for the next load if its transaction ended cleanly and there is room;
        close it otherwise (closing rolls back whatever is open)."""
        if healthy:
            with self._lock:
                if len(self._idle) < self._max_idle:
                    self._idle.append(conn)
                    return
        _close_quietly(conn)

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close_quietly(conn)

    def __del__(self) -> None:  # the warehouse object is gone: close what it kept
        try:
            self.close()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass


def _close_quietly(conn: adbc_pg.Connection) -> None:
    try:
        conn.close()
    except adbc_driver_manager.Error:
        pass
