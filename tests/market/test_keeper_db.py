"""The keeper's database: Alembic migrations on SQLite and PostgreSQL (the migrated schema is the
models' schema), adoption of a database made before migrations, ``gridcoop keeper db``; one settler
at a time (SQLite: a second keeper on the file refuses; PostgreSQL: standby, take-over, fencing)."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text

from gridcoop.cli import main
from keeper import db as D
from keeper.clock import chain_clock
from keeper.service import Keeper
from keeper.settler import LostSettlerLock, SettlerBusy

from .test_keeper import _book, _settled_events, advance_to


def _diff(db: D.Database) -> list:
    with db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), D.Base.metadata)


def test_migrating_an_empty_database_gives_exactly_the_models_schema(db_url):
    out = CliRunner().invoke(main, ["keeper", "db", "upgrade", "--db", db_url])
    assert out.exit_code == 0 and "schema empty -> 0004" in out.output, out.output
    db = D.Database(db_url, migrate=False)
    try:
        assert db.current_revision() == D.Database.head_revision() == "0004"
        assert _diff(db) == []  # alembic's autogenerate finds nothing to change
        assert set(inspect(db.engine).get_table_names()) == set(D.Base.metadata.tables) | {"alembic_version"}
        out = CliRunner().invoke(main, ["keeper", "db", "current", "--db", db_url])
        assert out.exit_code == 0 and json.loads(out.output)["up_to_date"] is True
    finally:
        db.dispose()
    db = D.Database(db_url)  # opening migrates to head again
    assert db.current_revision() == "0004" and _diff(db) == []
    db.dispose()


@pytest.mark.parametrize("made_by", ["release_without_prefer_and_fee", "release_with_prefer_and_fee"])
def test_a_database_from_before_migrations_is_stamped_and_upgraded(tmp_path, made_by):
    """Keeper databases were made with create_all before migrations existed, by releases with and
    without the orders.prefer / trades.fee_per_kwh columns: both are stamped and upgraded, rows kept."""
    url = f"sqlite:///{tmp_path}/old.db"
    if made_by == "release_with_prefer_and_fee":
        engine = create_engine(url)
        D.Base.metadata.create_all(engine, tables=[t for n, t in D.Base.metadata.tables.items()
                                                   if n not in ("settler_leases", "relayed_readings")])
    else:  # exactly the first release's tables: migration 0001, then forget that it was a migration
        D.Database(url, migrate=False).upgrade("0001")
        engine = create_engine(url)
        with engine.begin() as c:
            c.execute(text("DROP TABLE alembic_version"))
    with engine.begin() as c:
        c.execute(text("INSERT INTO intervals (interval_id, state, volume_wh, money, n_orders, n_trades, updated_at) "
                       "VALUES (7, 'settled', 5, '9', 1, 1, 0)"))
        c.execute(text("INSERT INTO trades (interval_id, seller, buyer, sell_hash, buy_hash, wh, price, money, "
                       "payment_token, tx_hash" + (", fee_per_kwh" if made_by.endswith("with_prefer_and_fee") else "")
                       + ") VALUES (7, 's', 'b', 'sh', 'bh', 5, '2', '0', 't', 'x'"
                       + (", '0'" if made_by.endswith("with_prefer_and_fee") else "") + ")"))
    engine.dispose()
    db = D.Database(url)
    try:
        assert db.current_revision() == "0004" and _diff(db) == []
        with db.session() as s:
            assert db.interval(s, 7, create=False).volume_wh == 5  # data kept
            assert s.get(D.TradeRow, 1).fee_per_kwh == "0"
    finally:
        db.dispose()


def test_sqlite_one_keeper_per_file(env, tmp_path):
    url = f"sqlite:///{tmp_path}/one.db"
    k1 = Keeper(env.w3, env.keeper, env.market, url, clock=chain_clock(env.w3))
    with pytest.raises(SettlerBusy, match="one keeper per database file"):
        Keeper(env.w3, env.keeper, env.market, url, clock=chain_clock(env.w3))
    k1.db.dispose()  # releases the file's settler lock
    k2 = Keeper(env.w3, env.keeper, env.market, url, clock=chain_clock(env.w3))
    k2.db.dispose()


def test_postgres_standby_takeover_and_fencing(env, pg_server):
    url = pg_server.create_database("fencing")
    a = Keeper(env.w3, env.keeper, env.market, url, clock=chain_clock(env.w3), receipt_timeout=30)
    b = Keeper(env.w3, env.keeper, env.market, url, clock=chain_clock(env.w3), receipt_timeout=30)
    try:
        iid = env.current_interval() + 2
        for signed in _book(env, iid):
            b.accept_order(signed)  # any keeper takes orders
        assert a.settler.ensure() and a.settler.epoch == 1
        advance_to(env.w3, iid * 900)
        assert b.settle_interval(iid).state == "standby" and b.run_once() == []
        # a's lock connection dies (as when its process is killed or its host vanishes): the server
        # releases the lock, b takes over with a higher epoch ...
        with a.db.engine.connect() as c:
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE "
                           "'gridcoop-settler%' AND pid <> pg_backend_pid()"))
            c.commit()
        assert b.settler.ensure() and b.settler.epoch == 2
        assert b.health()["settler"] is True and b.health()["database"] == "postgresql"
        # ... and a, which has not noticed yet (it still thinks it holds epoch 1), can record nothing
        a.settler._conn = None  # skip its own liveness check: a paused process waking up late
        with pytest.raises(LostSettlerLock):
            a._set_interval(iid, state=D.IV_FAILED, error="stale settler")
        with pytest.raises(LostSettlerLock):
            a.txm.sign_and_store(iid, {"to": env.market.address, "data": "0x", "gas": 50_000})
        assert not a.txm.txs(iid)
        res = b.settle_interval(iid)
        assert res.state == "settled" and len(_settled_events(env, iid)) == 1
        assert a.settle_interval(iid).state == "standby"  # b holds the lock now
    finally:
        a.db.dispose()
        b.db.dispose()
