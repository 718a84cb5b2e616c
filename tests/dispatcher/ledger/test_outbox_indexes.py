"""Deliveries' partial indexes leave out rows whose column is still NULL (every new delivery), so the outbox
does not write them; SQLite must still pick them for the searches that filter on those columns (PostgreSQL's
plans are checked in tests/support/test_search_plan.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from dispatcher.models import Base
from dispatcher.support import search


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (search.Filters(destination_host="hooks.example"), "ix_deliveries_destination_host_created_at"),
        (search.Filters(error_class="dns"), "ix_deliveries_last_error_class_created_at"),
        (search.Filters(status_code=500), "ix_deliveries_last_status_code_created_at"),
    ],
)
def test_sqlite_answers_the_filter_from_its_partial_index(
    tmp_path: Path, filters: search.Filters, index: str
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        compiled = search.query_for(session, filters).limit(search.PAGE_SIZE + 1).compile(engine)
        values = tuple(compiled.params[name] for name in compiled.positiontup or ())
        plan = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values).all()
    engine.dispose()

    assert any(index in row[-1] for row in plan), plan


def test_the_indexes_on_columns_new_deliveries_leave_null_are_partial(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'rows.db'}")
    Base.metadata.create_all(engine)
    with engine.connect() as connection:
        partial = connection.execute(
            text("SELECT name FROM sqlite_master WHERE tbl_name = 'deliveries' AND sql LIKE '%WHERE%'")
        ).scalars()
        assert sorted(partial) == [
            "ix_deliveries_destination_host_created_at",
            "ix_deliveries_last_error_class_created_at",
            "ix_deliveries_last_status_code_created_at",
            "ix_deliveries_pending_turn",  # the order rule asks only about pending deliveries
            "ix_deliveries_state_completed_at",  # failed ones only (replay, dashboard)
            "ix_deliveries_state_created_at",  # not the succeeded ones: nearly every kept row
        ]
    engine.dispose()
