"""Durable SQLite outbox: a signed reading is stored (fsync'd) before it is pushed, and leaves the
pending set only when a receipt shows it accepted or already on chain.

The interval builder's anchor is saved in the same transaction as the reading it closed, so a
process killed at any point (SIGKILL included) restarts where it was: readings already stored are
re-pushed (a no-op on chain if they made it before the crash), nothing is lost or invented.

With the MQTT pusher a reading the broker acknowledged (PUBACK) is ``sent``: it no longer goes out
with every push, and it becomes ``accepted`` when the chain's last accepted sequence of its meter
reaches it (:meth:`Outbox.confirm_sent`, run by the gateway's reconcile loop), or ``pending`` again
if the chain still lacks it ``resend_after`` seconds later (a broker that lost it, a relay that never
came back): publishing it again is harmless.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gridcoop_sdk.meters import RETRY_LATER, SubmitResult
from gridcoop_sdk.readings import SignedReading

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    meter_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | accepted | duplicate | rejected
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (meter_id, sequence)
);
CREATE INDEX IF NOT EXISTS readings_status ON readings(status, created);
CREATE TABLE IF NOT EXISTS anchors (name TEXT PRIMARY KEY, state TEXT);
CREATE TABLE IF NOT EXISTS log (t REAL NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
"""


class Outbox:
    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self._lock = threading.Lock()
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _tx(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self.db)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
            return out

    def add(self, name: str, signed: SignedReading | None, anchor_state: dict | None) -> bool:
        """Store ``signed`` (if any) and the builder anchor of meter ``name`` atomically.

        Returns False if that (meter, sequence) was already in the outbox.
        """
        now = self.clock()

        def work(db: sqlite3.Connection) -> bool:
            added = False
            if signed is not None:
                mid, seq = signed.key()
                cur = db.execute(
                    "INSERT OR IGNORE INTO readings(meter_id, sequence, name, body, created, updated) "
                    "VALUES (?,?,?,?,?,?)", (mid, seq, name, signed.to_json(), now, now))
                added = cur.rowcount == 1
            db.execute("INSERT OR REPLACE INTO anchors(name, state) VALUES (?,?)",
                       (name, json.dumps(anchor_state)))
            return added

        return self._tx(work)

    def anchor(self, name: str) -> dict | None:
        row = self.db.execute("SELECT state FROM anchors WHERE name=?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def pending(self, limit: int = 100) -> list[SignedReading]:
        rows = self.db.execute(
            "SELECT body FROM readings WHERE status='pending' ORDER BY sequence, meter_id LIMIT ?", (limit,)
        ).fetchall()
        return [SignedReading.from_json(r[0]) for r in rows]

    def mark(self, result: SubmitResult) -> None:
        """Record what the chain said: accepted / duplicate leave the pending set; rejected stay
        visible with the reason (status 'rejected'), except refusals the same reading can outgrow
        (``RETRY_LATER``: its interval is not over on the chain's clock yet), which stay pending with
        the reason noted and are pushed again."""
        now = self.clock()
        final = [(m, s, r) for m, s, r in result.rejected if r not in RETRY_LATER]
        later = [(m, s, r) for m, s, r in result.rejected if r in RETRY_LATER]

        sent = list(getattr(result, "sent", ()))

        def work(db: sqlite3.Connection) -> None:
            db.executemany("UPDATE readings SET status='sent', updated=?, attempts=attempts+1 "
                           "WHERE meter_id=? AND sequence=? AND status='pending'", [(now, m, s) for m, s in sent])
            for status, items in (("accepted", result.accepted), ("duplicate", result.duplicates)):
                db.executemany("UPDATE readings SET status=?, updated=?, attempts=attempts+1 "
                               "WHERE meter_id=? AND sequence=?", [(status, now, m, s) for m, s in items])
            db.executemany("UPDATE readings SET status='rejected', reason=?, updated=?, attempts=attempts+1 "
                           "WHERE meter_id=? AND sequence=?", [(r, now, m, s) for m, s, r in final])
            for m, s, r in final:
                db.execute("INSERT INTO log(t, kind, detail) VALUES (?,?,?)",
                           (now, "rejected", f"{m} sequence {s}: {r}"))
            db.executemany("UPDATE readings SET reason=?, updated=?, attempts=attempts+1 "
                           "WHERE meter_id=? AND sequence=? AND status='pending'", [(r, now, m, s) for m, s, r in later])
            for m, s, r in later:
                db.execute("INSERT INTO log(t, kind, detail) VALUES (?,?,?)",
                           (now, "deferred", f"{m} sequence {s}: {r} (the chain's clock is behind this gateway's "
                                             "by more than the registry's maxClockDrift); kept pending, pushed again"))

        self._tx(work)

    def reopen_vanished(self, meter_id_hex: str, last_on_chain: int) -> int:
        """After a reorg: readings of ``meter_id_hex`` marked accepted/duplicate whose sequence is
        above the chain's last accepted sequence are no longer on chain; make them pending again
        (the next push re-submits the same signed bytes). Returns how many were reopened."""
        now = self.clock()

        def work(db: sqlite3.Connection) -> int:
            cur = db.execute("UPDATE readings SET status='pending', updated=? WHERE meter_id=? AND sequence>? "
                             "AND status IN ('accepted','duplicate')", (now, meter_id_hex.lower(), int(last_on_chain)))
            if cur.rowcount:
                db.execute("INSERT INTO log(t, kind, detail) VALUES (?,?,?)",
                           (now, "reorg", f"{meter_id_hex} readings after sequence {last_on_chain} vanished from "
                                          f"the chain ({cur.rowcount}); re-submitting"))
            return cur.rowcount

        return self._tx(work)

    def confirm_sent(self, meter_id_hex: str, last_on_chain: int, resend_before: float) -> tuple[int, int]:
        """MQTT readings of ``meter_id_hex`` that the broker took (``sent``): those at or below the
        chain's last accepted sequence are on chain (``accepted``); those above it and sent before
        ``resend_before`` go back to ``pending`` to be published again. Returns (confirmed, resent).

        A reading the chain refused also ends below the last sequence once a later one is accepted;
        the relay worker records every refusal with its reason (``gridcoop relay mqtt --refusals``)."""
        now = self.clock()
        mid = meter_id_hex.lower()

        def work(db: sqlite3.Connection) -> tuple[int, int]:
            done = db.execute("UPDATE readings SET status='accepted', updated=? WHERE meter_id=? AND sequence<=? "
                              "AND status='sent'", (now, mid, int(last_on_chain))).rowcount
            again = db.execute("UPDATE readings SET status='pending', updated=? WHERE meter_id=? AND sequence>? "
                               "AND status='sent' AND updated<?", (now, mid, int(last_on_chain), resend_before)).rowcount
            if again:
                db.execute("INSERT INTO log(t, kind, detail) VALUES (?,?,?)",
                           (now, "resend", f"{mid}: {again} reading(s) the broker took are not on chain yet; "
                                           "publishing them again"))
            return done, again

        return self._tx(work)

    def note(self, kind: str, detail: str) -> None:
        """Keep an error or problem for ``status`` (push failures, missed polls, meter resets)."""
        self._tx(lambda db: db.execute("INSERT INTO log(t, kind, detail) VALUES (?,?,?)",
                                       (self.clock(), kind, detail)))

    def count(self, status: str = "pending") -> int:
        return self.db.execute("SELECT COUNT(*) FROM readings WHERE status=?", (status,)).fetchone()[0]

    def rows(self, statuses: Iterable[str] = ("pending", "sent", "accepted", "duplicate", "rejected")) -> list[dict]:
        qs = ",".join("?" for _ in statuses)
        cur = self.db.execute(f"SELECT name, meter_id, sequence, status, reason, attempts FROM readings "
                              f"WHERE status IN ({qs}) ORDER BY sequence", tuple(statuses))
        return [dict(zip(("name", "meter_id", "sequence", "status", "reason", "attempts"), r, strict=True))
                for r in cur.fetchall()]

    def status(self) -> dict[str, Any]:
        """Outbox depth, last accepted sequence per meter, refused readings and the last error."""
        by_status = dict(self.db.execute("SELECT status, COUNT(*) FROM readings GROUP BY status").fetchall())
        last = dict(self.db.execute(
            "SELECT name, MAX(sequence) FROM readings WHERE status IN ('accepted','duplicate') GROUP BY name"
        ).fetchall())
        err = self.db.execute("SELECT t, kind, detail FROM log ORDER BY rowid DESC LIMIT 1").fetchone()
        return {
            "pending": by_status.get("pending", 0),
            "sent": by_status.get("sent", 0),
            "accepted": by_status.get("accepted", 0) + by_status.get("duplicate", 0),
            "rejected": by_status.get("rejected", 0),
            "last_accepted_sequence": last,
            "last_error": {"t": err[0], "kind": err[1], "detail": err[2]} if err else None,
        }
