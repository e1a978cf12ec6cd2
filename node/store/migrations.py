"""Numbered schema migrations of the node store.

Owns the SQL that creates and upgrades the store. Migration N moves the schema
from version N-1 to N (sqlite's `user_version`); they are applied in order on
open and never edited once released; a change is a new migration.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MIGRATIONS", "SMALL_KINDS", "SMALL_KINDS_SQL"]

_V1: Final = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- Every roster version this node accepted, with the certificate that made it valid.
CREATE TABLE rosters (
    version     INTEGER PRIMARY KEY,
    id          BLOB NOT NULL UNIQUE,
    roster      BLOB NOT NULL,
    cert        BLOB NOT NULL,
    received_ms INTEGER NOT NULL
);

-- The signed history, one row per chain position. Events are found by position
-- (an id is only ever needed together with its position), so the id has no index.
-- status: 0 applied, 1 kept in the chain but not applied, 2 beyond a fork freeze.
CREATE TABLE events (
    origin      TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    id          BLOB NOT NULL,
    kind        TEXT NOT NULL,
    wall_ms     INTEGER NOT NULL,
    header      BLOB NOT NULL,
    sig         BLOB NOT NULL,
    payload     BLOB,
    status      INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (origin, epoch, seq)
) WITHOUT ROWID;

-- The last appended event of each (origin, epoch) chain.
CREATE TABLE heads (
    origin TEXT NOT NULL,
    epoch  INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    id     BLOB NOT NULL,
    PRIMARY KEY (origin, epoch)
) WITHOUT ROWID;

-- Verified events that arrived ahead of a gap in their chain.
CREATE TABLE pending (
    origin      TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    id          BLOB NOT NULL,
    envelope    BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (origin, epoch, seq, id)
) WITHOUT ROWID;

-- Evidence that an origin signed two conflicting events; the chain is frozen.
CREATE TABLE fork_proofs (
    origin       TEXT NOT NULL,
    epoch        INTEGER NOT NULL,
    frozen_after INTEGER NOT NULL,
    proof        BLOB NOT NULL,
    detected_ms  INTEGER NOT NULL,
    PRIMARY KEY (origin, epoch, frozen_after)
) WITHOUT ROWID;

-- Projection of alert events (rebuilt from events at will).
CREATE TABLE alerts (
    id         BLOB PRIMARY KEY,
    state      BLOB NOT NULL,
    status     TEXT,
    origin     TEXT,
    country    TEXT,
    severity   TEXT,
    urgency    TEXT,
    exercise   INTEGER,
    raised_ms  INTEGER,
    updated_ms INTEGER
) WITHOUT ROWID;
CREATE INDEX alerts_by_status ON alerts (status, raised_ms);
"""

_V2: Final = """
-- Defenders' pseudonyms minted here, each with the real identity sealed to this
-- member's own X25519 key (node/ops/defenders.py): never in the clear on disk.
CREATE TABLE pseudonyms (
    pseudonym  TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
"""

_V3: Final = """
-- What each chain claimed so far (federation/limits.py): the latest signed time,
-- the events and payload bytes it added on that UTC day, and the latest roster
-- version it named. Filled in from the events already stored (the roster
-- version from 0: older chains are judged from their next event on).
ALTER TABLE heads ADD COLUMN wall_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE heads ADD COLUMN day_events INTEGER NOT NULL DEFAULT 0;
ALTER TABLE heads ADD COLUMN day_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE heads ADD COLUMN roster_ver INTEGER NOT NULL DEFAULT 0;
UPDATE heads SET wall_ms = (
    SELECT MAX(e.wall_ms) FROM events e WHERE e.origin = heads.origin AND e.epoch = heads.epoch
);
UPDATE heads SET
    day_events = (
        SELECT COUNT(*) FROM events e WHERE e.origin = heads.origin AND e.epoch = heads.epoch
        AND e.wall_ms / 86400000 = heads.wall_ms / 86400000
    ),
    day_bytes = (
        SELECT COALESCE(SUM(LENGTH(e.payload)), 0) FROM events e
        WHERE e.origin = heads.origin AND e.epoch = heads.epoch
        AND e.wall_ms / 86400000 = heads.wall_ms / 86400000
    );
"""

_V4: Final = """
-- Control requests that change something (node/control/server.py): the nonce is
-- written before a request runs and its answer after, so a retry is answered
-- from here instead of running twice, across restarts too.
CREATE TABLE control_requests (
    nonce BLOB PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    reply BLOB
) WITHOUT ROWID;
CREATE INDEX control_requests_by_time ON control_requests (ts_ms);
"""

_V5: Final = """
-- Notices a webhook receiver did not take before its retries ran out
-- (node/integrations/webhooks.py): kept for an operator to replay.
CREATE TABLE webhook_dead (
    webhook TEXT NOT NULL,
    id TEXT NOT NULL,
    body BLOB NOT NULL,
    failed_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    PRIMARY KEY (webhook, id)
) WITHOUT ROWID;
"""

#: Event kinds of which a network holds few (rosters, coverage, keys, drills): read
#: by kind (`Store.events_of_kinds`) through the partial index of migration 6. Part
#: of a released migration: never edited (another list is another index).
SMALL_KINDS: Final = (
    "coverage.declared",
    "drill.revealed",
    "drill.scheduled",
    "key.rotated",
    "roster.approved",
    "roster.proposed",
)
#: The condition of that index, as a query must repeat it for sqlite to use it.
SMALL_KINDS_SQL: Final = "(" + ", ".join(f"'{k}'" for k in SMALL_KINDS) + ")"

_V6: Final = f"""
-- Alerts newest first (rrn alert list, collective actions, the integrators'
-- bucket), with their status: a list walks this index and reads the state of only
-- the alerts it returns, instead of sorting every matching row, state and all.
CREATE INDEX alerts_by_time ON alerts (raised_ms DESC, id, status)
    WHERE status IS NOT NULL;
-- Each member's closed alerts by when they last changed: exactly the ones
-- retention deletes next (node/alerting/retention.py), oldest first. The status
-- makes it covering: sqlite reads no alert's state to find them.
CREATE INDEX alerts_closed ON alerts (origin, updated_ms, id, status)
    WHERE status IN ('resolved', 'cancelled');
-- The few events of the kinds read by kind at start and on change (rosters,
-- coverage declarations, key rotations, drills), without scanning the history.
CREATE INDEX events_by_kind ON events (kind) WHERE kind IN {SMALL_KINDS_SQL};
"""

_V7: Final = """
-- Events by id: a tombstone lists the events it deletes by id alone (PROTOCOL.md
-- 4.6), and every node, on committing it, finds them (their origin and kind, to
-- delete their payloads, and in the integrators' stream). Without this, each
-- tombstone read the whole history, on the writer's thread, once per event listed.
CREATE INDEX events_by_id ON events (id);
"""

_V8: Final = """
-- Alerts in the order this node first heard of them, not by id. Alert ids are
-- hashes: keyed by them, every alert raised or changed rewrote a page somewhere in
-- the whole table, and at a million events most of a commit was syncing those
-- pages (docs/BENCHMARKS.md, issue 20's fifth round). In a rowid table new alerts
-- go at its end and an update (in place: ON CONFLICT DO UPDATE keeps the row) lands
-- where the alerts of the same days are; only the small index of ids is random.
-- Rows are copied oldest first, so an upgraded store is laid out as a new one.
CREATE TABLE alerts_by_arrival (
    id         BLOB NOT NULL,
    state      BLOB NOT NULL,
    status     TEXT,
    origin     TEXT,
    country    TEXT,
    severity   TEXT,
    urgency    TEXT,
    exercise   INTEGER,
    raised_ms  INTEGER,
    updated_ms INTEGER
);
INSERT INTO alerts_by_arrival (id, state, status, origin, country, severity, urgency,
    exercise, raised_ms, updated_ms)
    SELECT id, state, status, origin, country, severity, urgency, exercise, raised_ms,
        updated_ms
    FROM alerts ORDER BY raised_ms, id;
DROP TABLE alerts;
ALTER TABLE alerts_by_arrival RENAME TO alerts;
CREATE UNIQUE INDEX alerts_by_id ON alerts (id);
CREATE INDEX alerts_by_status ON alerts (status, raised_ms);
CREATE INDEX alerts_by_time ON alerts (raised_ms DESC, id, status)
    WHERE status IS NOT NULL;
CREATE INDEX alerts_closed ON alerts (origin, updated_ms, id, status)
    WHERE status IN ('resolved', 'cancelled');
"""

_V9: Final = """
-- Events by id without a random write per event (node/store/ids.py): the index of
-- migration 7 put every new event's id somewhere in a tree of all of them, and at a
-- million events that was most of a commit (docs/BENCHMARKS.md, issue 20). New ids
-- go at the end of event_ids_new (no index); runs of them are merged into event_ids
-- in key order (the first eight bytes of the id; the event row has the whole).
CREATE TABLE event_ids (
    key    BLOB NOT NULL,
    origin TEXT NOT NULL,
    epoch  INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (key, origin, epoch, seq)
) WITHOUT ROWID;
CREATE TABLE event_ids_new (
    key    BLOB NOT NULL,
    origin TEXT NOT NULL,
    epoch  INTEGER NOT NULL,
    seq    INTEGER NOT NULL
);
INSERT INTO event_ids (key, origin, epoch, seq)
    SELECT substr(id, 1, 8), origin, epoch, seq FROM events ORDER BY 1, 2, 3, 4;
DROP INDEX events_by_id;
"""

#: MIGRATIONS[i] upgrades user_version i to i + 1.
MIGRATIONS: Final[tuple[str, ...]] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9)
