"""Indexes for the KPI report's period queries on tickets and ratings

The report selects the tickets opened in a period and the ratings given in
it; without these it reads both tables whole.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 23:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tickets_created_at", "tickets", ["created_at"], if_not_exists=True)
    op.create_index("ix_ticket_ratings_at", "ticket_ratings", ["at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_ticket_ratings_at", table_name="ticket_ratings", if_exists=True)
    op.drop_index("ix_tickets_created_at", table_name="tickets", if_exists=True)
