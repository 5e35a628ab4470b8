"""The SQLite statements written out in audit._sql are the ones the SQLModel tables compile to."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from audit import _sql, _tables


def test_hot_statements_equal_what_sqlalchemy_compiles_from_the_tables():
    """Head read, entry, payload and node inserts and the head move match, bind order included."""
    compiled = _tables.CompiledStatements(sqlite.dialect())
    for name in ("head", "entry", "payload", "node", "move"):
        assert getattr(_sql.SQLITE_STATEMENTS, name) == getattr(compiled, name), name
    assert _sql.SQLITE_STATEMENTS.positional and compiled.positional


def test_table_and_index_names_equal_the_declared_schema():
    """The names the store checks on opening are every declared table and history index."""
    assert set(_sql.TABLE_NAMES) == {t.name for t in _tables.TABLES}
    assert list(_sql.HISTORY_INDEX_NAMES) == [ix.name for ix in _tables.HISTORY_INDEXES]


def test_a_log_created_by_the_store_has_every_declared_column(tmp_path):
    """The tables created from the declarations hold the columns the written-out SQL names."""
    from audit.log import AuditLog

    AuditLog.open(f"sqlite:///{tmp_path / 'a.db'}").close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        columns = {t: [c["name"] for c in inspector.get_columns(t)] for t in _sql.TABLE_NAMES}
    engine.dispose()
    assert columns["audit_entries"] == list(_tables.ENTRY_PARAMS)
    assert columns["audit_payloads"] == list(_tables.PAYLOAD_PARAMS)
    assert columns["audit_nodes"] == list(_tables.NODE_PARAMS)
