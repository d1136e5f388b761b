"""Orders, coupons, tiers and the RFM sweep

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 20:49:23.728489
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('rfm_sweeps',
    sa.Column('business_day', sa.Date(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('changed', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('business_day', name=op.f('pk_rfm_sweeps'))
    )
    op.create_table('tier_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('business_day', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tier_outbox')),
    sa.UniqueConstraint('customer_id', 'tier', 'business_day', name='uq_tier_outbox')
    )
    with op.batch_alter_table('tier_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tier_outbox_sent_at'), ['sent_at'], unique=False)

    op.create_table('coupons',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('campaign', sa.String(length=32), nullable=False),
    sa.Column('discount_percent', sa.Integer(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('redeemed_order_id', sa.String(length=64), nullable=True),
    sa.Column('redeemed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_coupons_customer_id_customers')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_coupons')),
    sa.UniqueConstraint('key', name=op.f('uq_coupons_key'))
    )
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupons_customer_id'), ['customer_id'], unique=False)

    op.create_table('orders',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('credited_coupon', sa.String(length=32), nullable=True),
    sa.Column('credited_touch', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_orders_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_at'), ['at'], unique=False)
        batch_op.create_index('ix_orders_customer_at', ['customer_id', 'at'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_purchase_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_purchase_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('order_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('favourite_category', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('lifecycle_state', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('tier', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('tier_changed_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('advisor_id', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_customers_first_purchase_at'), ['first_purchase_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_last_purchase_at'), ['last_purchase_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_tier'), ['tier'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_tier_changed_on'), ['tier_changed_on'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_customers_advisor_id_staff'), 'staff', ['advisor_id'], ['id'])




def downgrade() -> None:

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_customers_advisor_id_staff'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_customers_tier_changed_on'))
        batch_op.drop_index(batch_op.f('ix_customers_tier'))
        batch_op.drop_index(batch_op.f('ix_customers_last_purchase_at'))
        batch_op.drop_index(batch_op.f('ix_customers_first_purchase_at'))
        batch_op.drop_column('advisor_id')
        batch_op.drop_column('tier_changed_on')
        batch_op.drop_column('tier')
        batch_op.drop_column('lifecycle_state')
        batch_op.drop_column('favourite_category')
        batch_op.drop_column('order_count')
        batch_op.drop_column('last_purchase_at')
        batch_op.drop_column('first_purchase_at')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_customer_at')
        batch_op.drop_index(batch_op.f('ix_orders_at'))

    op.drop_table('orders')
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupons_customer_id'))

    op.drop_table('coupons')
    with op.batch_alter_table('tier_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tier_outbox_sent_at'))

    op.drop_table('tier_outbox')
    op.drop_table('rfm_sweeps')

