"""A coupon credits at most one order

`orders.credited_coupon` gets a unique index (NULLs, the orders without a
coupon, stay many on both engines). A store credited twice before this keeps
one credit per coupon: the order the coupon records as redeemed, else the
earliest; the others lose theirs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 21:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

orders = sa.table("orders", sa.column("id", sa.String), sa.column("at", sa.DateTime),
                  sa.column("credited_coupon", sa.String),
                  sa.column("credited_touch", sa.String))
coupons = sa.table("coupons", sa.column("code", sa.String),
                   sa.column("redeemed_order_id", sa.String))


def upgrade() -> None:
    bind = op.get_bind()
    twice = (sa.select(orders.c.credited_coupon)
             .where(orders.c.credited_coupon.is_not(None))
             .group_by(orders.c.credited_coupon).having(sa.func.count() > 1))
    for (code,) in bind.execute(twice).all():
        redeemed = bind.scalar(sa.select(coupons.c.redeemed_order_id)
                               .where(coupons.c.code == code))
        ids = [row.id for row in bind.execute(
            sa.select(orders.c.id).where(orders.c.credited_coupon == code)
            .order_by(orders.c.at, orders.c.id)).all()]
        keep = redeemed if redeemed in ids else ids[0]
        bind.execute(sa.update(orders)
                     .where(orders.c.credited_coupon == code, orders.c.id != keep)
                     .values(credited_coupon=None, credited_touch=None))
    op.create_index("ux_orders_credited_coupon", "orders", ["credited_coupon"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_orders_credited_coupon", table_name="orders")
