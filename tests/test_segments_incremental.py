"""The incremental segment refresh against the full recompute, on both engines:
windows that slide with no new fact, exits and re-entries, facts added,
changed and removed behind the application's back, a rule redefined, and the
database's stamps that tell the refresh who changed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text, update

from activities.segments import define_segment, refresh_segment, segment_members
from activities.store import Store
from domain import schema
from domain.segments import CUSTOMER_FIELDS, RefreshResult, SegmentDefinition, SegmentPolicy
from tests.harness import STAFF, seed_staff

POLICY = SegmentPolicy()
START = datetime(2026, 3, 1, 12, tzinfo=UTC)
CATEGORIES = ["baby", "beauty", "tea", "coffee", "books"]

RULES: dict[str, dict[str, object]] = {
    "no-repurchase-90d": {"all": [{"orders": {"within_days": 365}},
                                  {"orders": {"within_days": 90, "max_count": 0}}]},
    "family-and-beauty": {"all": [
        {"orders": {"category": "baby", "within_days": 30, "min_count": 3}},
        {"follows": {"category": "beauty"}}]},
    "beauty-spenders": {"orders": {"category": "beauty", "within_days": 60, "min_count": 2,
                                   "min_amount": "300"}},
    "at-most-two-in-45d": {"orders": {"within_days": 45, "max_count": 2}},
    "drinks-fans-not-buying-tea": {"all": [
        {"follows": {"category": ["tea", "coffee"]}},
        {"not": {"orders": {"category": "tea", "within_days": 20}}}]},
    "wechat-engaged": {"interactions": {"channel": "wechat", "within_days": 14,
                                        "min_count": 2}},
    "new-or-frequent": {"any": [{"tier": "new"},
                                {"orders": {"within_days": 10, "min_count": 3}}]},
    "english-owned": {"all": [{"field": {"name": "locale", "equals": "en"}},
                              {"not": {"field": {"name": "owner_id", "missing": True}}}]},
}


def define(store: Store, name: str, rule: dict[str, object], now: datetime = START) -> None:
    define_segment(store, POLICY, SegmentDefinition(name=name, rule=rule), now=now)


def members(store: Store, name: str) -> set[str]:
    with store.unit_of_work() as s:
        return segment_members(s, name)


def changes(store: Store, name: str) -> list[tuple[datetime, str, str]]:
    c = schema.SegmentChange
    with store.unit_of_work() as s:
        return sorted((at, customer, change) for at, customer, change in s.execute(
            select(c.at, c.customer_id, c.change).where(c.segment == name)).all())


def add_customer(store: Store, customer: str, **fields: object) -> None:
    with store.unit_of_work() as s:
        s.add(schema.Customer(id=customer, name=customer, created_at=START - timedelta(days=900),
                              **fields))


def add_order(store: Store, customer: str, at: datetime, *, category: str = "baby",
              amount_minor: int = 10000, recorded_at: datetime | None = None) -> str:
    with store.unit_of_work() as s:
        n = s.scalar(select(schema.Order.id).where(schema.Order.customer_id == customer)
                     .order_by(schema.Order.id.desc()).limit(1))
        key = f"{customer}-o{int(n.rsplit('o', 1)[1]) + 1 if n else 0:03d}"
        s.add(schema.Order(id=key, customer_id=customer, amount_minor=amount_minor,
                           currency="CNY", category=category, at=at,
                           recorded_at=recorded_at or at))
    return key


def refresh_both(store: Store, name: str, now: datetime) -> tuple[RefreshResult, RefreshResult]:
    """The segment refreshed incrementally and its twin (`name`/full) fully, at `now`."""
    # No margin: the test's transactions are sequential and short, and a
    # margin would make every fact of the last hour a candidate, hiding a
    # change the stamps missed.
    done = refresh_segment(store, POLICY, name, now=now, margin=timedelta(0))
    check = refresh_segment(store, POLICY, f"{name}/full", now=now, full=True)
    return done, check


def assert_same(store: Store, name: str, done: RefreshResult, check: RefreshResult) -> None:
    assert members(store, name) == members(store, f"{name}/full"), name
    assert (done.size, done.entered, done.left) == (check.size, check.entered, check.left), name
    assert [c[1:] for c in changes(store, name)] == [c[1:] for c in changes(store, f"{name}/full")]


# -- time passing, with no new fact --------------------------------------------------------


def test_a_window_slides_a_customer_in_and_out_with_no_new_fact(store: Store) -> None:
    """Bought in the year, nothing in the last 90 days: a customer enters when
    their last order turns 90 days old and leaves when it turns 365, and
    re-enters after a new order has aged in its turn."""
    rule = RULES["no-repurchase-90d"]
    for name in ("lapsing", "lapsing/full"):
        define(store, name, rule)
    add_customer(store, "C1")
    add_customer(store, "C2")  # never bought: never in
    add_order(store, "C1", START - timedelta(days=80))

    done, check = refresh_both(store, "lapsing", START)
    assert done.mode == "full" and members(store, "lapsing") == set()  # the first refresh

    steps = [(START + timedelta(days=5), set()),
             (START + timedelta(days=10, hours=1), {"C1"}),  # 90 days old: enters
             (START + timedelta(days=200), {"C1"}),
             (START + timedelta(days=290), set())]  # 370 days old: leaves
    for n, (now, expected) in enumerate(steps):
        done, check = refresh_both(store, "lapsing", now)
        assert done.mode == "incremental"
        if n:  # (the first may look again at what was written as the last one read)
            assert done.candidates is not None and done.candidates <= 1  # never C2
        assert members(store, "lapsing") == expected
        assert_same(store, "lapsing", done, check)

    bought = START + timedelta(days=291)
    add_order(store, "C1", bought)
    done, check = refresh_both(store, "lapsing", bought + timedelta(days=1))
    assert members(store, "lapsing") == set()
    done, check = refresh_both(store, "lapsing", bought + timedelta(days=95))
    assert members(store, "lapsing") == {"C1"}  # re-entered
    assert_same(store, "lapsing", done, check)
    assert [change for _, customer, change in changes(store, "lapsing")] == \
        ["entered", "left", "entered"]


def test_an_order_dated_ahead_counts_when_its_time_comes(store: Store) -> None:
    """An order recorded before a refresh but dated after it enters the
    window at the next one, though nothing about the customer changed."""
    rule = {"orders": {"within_days": 7}}
    for name in ("weekly", "weekly/full"):
        define(store, name, rule)
    add_customer(store, "C1")
    add_order(store, "C1", START + timedelta(days=3), recorded_at=START - timedelta(days=1))
    refresh_both(store, "weekly", START)
    assert members(store, "weekly") == set()
    done, check = refresh_both(store, "weekly", START + timedelta(days=4))
    assert (done.mode, members(store, "weekly")) == ("incremental", {"C1"})
    assert_same(store, "weekly", done, check)


# -- facts changing, however they are written ---------------------------------------------


def test_facts_changed_behind_the_application_are_seen(store: Store) -> None:
    """Fields, the tier, follows and interactions written with plain SQL (as
    an operator or another system would) make the customer a candidate."""
    seed_staff(store, STAFF)
    rules = {"english-owned": RULES["english-owned"],
             "core": {"tier": "core"},
             "tea-fans": {"follows": {"category": "tea"}},
             "wechat-engaged": RULES["wechat-engaged"]}
    for name, rule in rules.items():
        define(store, name, rule)
        define(store, f"{name}/full", rule)
    for n in range(6):
        add_customer(store, f"C{n}")
    now = START
    for name in rules:
        refresh_both(store, name, now)
    with store.unit_of_work() as s:
        s.execute(text("UPDATE customers SET locale = 'en', owner_id = 'rep-a' "
                       "WHERE id = 'C1'"))
        s.execute(text("UPDATE customers SET tier = 'core' WHERE id = 'C2'"))
        s.execute(text("INSERT INTO customer_interests (customer_id, category, source, at) "
                       "VALUES ('C3', 'tea', 'app', :at)"), {"at": START - timedelta(days=400)})
        for k in range(2):
            s.add(schema.Interaction(key=f"C4-{k}", customer_id="C4", staff_id="rep-a",
                                     channel="wechat", at=now - timedelta(days=k + 1),
                                     recorded_at=now - timedelta(days=30)))
    now += timedelta(hours=1)
    expected = {"english-owned": {"C1"}, "core": {"C2"}, "tea-fans": {"C3"},
                "wechat-engaged": {"C4"}}
    for name in rules:
        done, check = refresh_both(store, name, now)
        assert done.mode == "incremental"
        assert members(store, name) == expected[name], name
        assert_same(store, name, done, check)

    # ... and taken back: exits.
    with store.unit_of_work() as s:
        s.execute(text("UPDATE customers SET owner_id = NULL WHERE id = 'C1'"))
        s.execute(text("UPDATE customers SET tier = 'lost' WHERE id = 'C2'"))
        s.execute(text("DELETE FROM customer_interests WHERE customer_id = 'C3'"))
        s.execute(text("UPDATE interactions SET channel = 'phone' WHERE key = 'C4-0'"))
    now += timedelta(hours=1)
    for name in rules:
        done, check = refresh_both(store, name, now)
        assert members(store, name) == set(), name
        assert done.left == 1
        assert_same(store, name, done, check)


def test_every_field_a_rule_may_test_stamps_the_customer(store: Store) -> None:
    seed_staff(store, STAFF)
    add_customer(store, "C1")
    values = {"locale": "en", "timezone": "Europe/Paris", "owner_id": "rep-a",
              "advisor_id": "rep-b", "company": "Acme", "favourite_category": "tea",
              "lifecycle_state": "active", "tier": "core"}
    assert set(values) == set(CUSTOMER_FIELDS)
    stamp = select(schema.CustomerFactStamp.changed_at).where(
        schema.CustomerFactStamp.customer_id == "C1")
    unstamp = delete(schema.CustomerFactStamp)
    customer = update(schema.Customer).where(schema.Customer.id == "C1")
    with store.unit_of_work() as s:
        assert s.scalar(stamp) is not None  # a new customer is stamped too
    for field, value in values.items():
        with store.unit_of_work() as s:
            s.execute(unstamp)
        with store.unit_of_work() as s:
            s.execute(customer.values({field: value}))
            assert s.scalar(stamp) is not None, field
    # A column no rule reads, or a field set to what it was, leaves no stamp.
    with store.unit_of_work() as s:
        s.execute(unstamp)
    with store.unit_of_work() as s:
        s.execute(customer.values(name="renamed", order_count=3, locale="en"))
        s.execute(delete(schema.Order).where(schema.Order.customer_id == "C1"))
        assert s.scalar(stamp) is None
    add_order(store, "C1", START)
    with store.unit_of_work() as s:
        assert s.scalar(stamp) is not None


# -- the two paths agree over a run of days -------------------------------------------------


def _mutate(store: Store, rng: random.Random, now: datetime, customers: list[str]) -> None:
    """A day's facts: orders (some dated back, some ahead), follows taken and
    dropped, interactions, field and tier changes, an order removed."""
    for customer in rng.sample(customers, 6):
        when = now - timedelta(hours=rng.choice([1, 30, 24 * 40, 24 * 100]))
        if rng.random() < 0.15:
            when = now + timedelta(days=rng.choice([1, 3]))
        add_order(store, customer, when, category=rng.choice(CATEGORIES),
                  amount_minor=rng.choice([5000, 15000, 40000]),
                  recorded_at=now - timedelta(minutes=5))
    with store.unit_of_work() as s:
        for customer in rng.sample(customers, 2):
            category = rng.choice(CATEGORIES)
            if s.get(schema.CustomerInterest, (customer, category)) is None:
                s.add(schema.CustomerInterest(customer_id=customer, category=category,
                                              source="app", at=now))
        dropped = s.scalars(select(schema.CustomerInterest).limit(1)
                            .offset(rng.randrange(3))).first()
        if dropped is not None:
            s.delete(dropped)
        for customer in rng.sample(customers, 2):
            s.add(schema.Interaction(
                key=f"{customer}-{now.isoformat()}", customer_id=customer, staff_id="rep-a",
                channel=rng.choice(["wechat", "phone"]),
                at=now - timedelta(days=rng.choice([0, 2, 12])), recorded_at=now))
        customer = s.get(schema.Customer, rng.choice(customers))
        assert customer is not None
        customer.locale = rng.choice(["en", "zh-CN"])
        customer.owner_id = rng.choice(["rep-a", None])
        s.execute(update(schema.Customer).where(schema.Customer.id == rng.choice(customers))
                  .values(tier=rng.choice(["new", "core", "lost", None])))
        order = s.scalars(select(schema.Order).order_by(schema.Order.id)
                          .offset(rng.randrange(10)).limit(1)).first()
        if order is not None and rng.random() < 0.5:
            s.delete(order)


def test_the_incremental_refresh_finds_what_the_full_one_finds_day_after_day(
        store: Store) -> None:
    seed_staff(store, STAFF)
    rng = random.Random(20261130)
    customers = [f"C{n:02d}" for n in range(40)]
    for customer in customers:
        add_customer(store, customer, locale=rng.choice(["en", "zh-CN"]),
                     owner_id=rng.choice(["rep-a", None]),
                     tier=rng.choice(["new", "core", "regular", None]))
        for _ in range(rng.randrange(6)):
            add_order(store, customer, START - timedelta(days=rng.uniform(0, 400)),
                      category=rng.choice(CATEGORIES),
                      amount_minor=rng.choice([5000, 15000, 40000]))
    for name, rule in RULES.items():
        define(store, name, rule)
        define(store, f"{name}/full", rule)

    now = START
    looked_at = 0
    for day in range(12):
        for name in RULES:
            done, check = refresh_both(store, name, now)
            assert done.mode == ("full" if day == 0 else "incremental")
            looked_at += done.candidates or 0
            assert_same(store, name, done, check)
        # Some days pass with nothing new: only the windows move.
        if day % 3 != 2:
            _mutate(store, rng, now, customers)
        now += timedelta(days=rng.choice([1, 1, 2, 9]), hours=rng.choice([0, 5]))
    # Customers left and re-entered on the way, and the refresh looked at
    # fewer customers than a full one would have.
    assert any(c == "left" for name in RULES for _, _, c in changes(store, name))
    assert looked_at < 11 * len(RULES) * len(customers)


# -- when the refresh recomputes everyone ------------------------------------------------


def test_a_redefined_rule_a_full_request_and_an_earlier_moment_recompute_everyone(
        store: Store) -> None:
    add_customer(store, "C1")
    add_order(store, "C1", START - timedelta(days=20))
    define(store, "recent", {"orders": {"within_days": 30}})
    assert refresh_segment(store, POLICY, "recent", now=START).mode == "full"
    assert refresh_segment(store, POLICY, "recent", now=START).mode == "incremental"
    define(store, "recent", {"orders": {"within_days": 30}})  # the same rule again
    assert refresh_segment(store, POLICY, "recent", now=START).mode == "incremental"

    define(store, "recent", {"orders": {"within_days": 10}})
    done = refresh_segment(store, POLICY, "recent", now=START)
    assert (done.mode, done.left, members(store, "recent")) == ("full", 1, set())
    assert refresh_segment(store, POLICY, "recent", now=START, full=True).mode == "full"
    earlier = refresh_segment(store, POLICY, "recent", now=START - timedelta(days=15))
    assert (earlier.mode, members(store, "recent")) == ("full", {"C1"})


# -- the migration ------------------------------------------------------------------------


def test_the_segment_facts_migration_goes_down_and_up_again(store: Store) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from activities.store import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = store.engine.url.render_as_string(hide_password=False)
    add_customer(store, "C1")
    command.downgrade(config, "0016")
    store.engine.dispose()
    assert "customer_fact_stamps" not in inspect(store.engine).get_table_names()
    with store.engine.begin() as conn:  # no trigger left behind to stamp a missing table
        conn.execute(text("UPDATE customers SET locale = 'en'"))
        conn.execute(text("INSERT INTO orders (id, customer_id, amount_minor, currency, at, "
                          "recorded_at) VALUES ('O1', 'C1', 100, 'CNY', :at, :at)"),
                     {"at": START.replace(tzinfo=None)})
    command.upgrade(config, "head")
    store.engine.dispose()
    define(store, "en", {"field": {"name": "locale", "equals": "en"}})
    assert refresh_segment(store, POLICY, "en", now=START).size == 1
    with store.unit_of_work() as s:
        s.execute(update(schema.Customer).values(locale="zh-CN"))
    done = refresh_segment(store, POLICY, "en", now=START + timedelta(hours=1),
                           margin=timedelta(0))
    assert (done.mode, done.left, done.candidates) == ("incremental", 1, 1)

