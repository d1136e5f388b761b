"""The KPI report: what operations look at, computed from the store.

`build_report` gathers the figures for a period; `render_text` prints them and
`render_html` draws a page with charts (funnels, escalations and SLA breaches
per day) that needs nothing but a browser.

Ticket figures are for the tickets opened in the period, in the state they
are in when the report is built (`now`): a ticket answered late, or not yet
answered past its deadline, has breached its first-response SLA; one resolved
over its target on the SLA clock, or still open past its resolution deadline,
its resolution SLA. CSAT counts the ratings given in the period.

The report's shape is in `figures`, the store queries in `queries`, text and
HTML in `render`.
"""

from starter.report.figures import (
    ALIASES,
    EXITS,
    FUNNELS,
    RESOLVED_STAGES,
    SATISFIED_SCORE,
    UNASSIGNED,
    FunnelStep,
    Report,
    TicketFigures,
)
from starter.report.queries import (
    build_report,
)
from starter.report.render import (
    COLOURS,
    PAGE,
    SLA_COLOURS,
    SLA_LABELS,
    TICKET_COLUMNS,
    breach_bars,
    escalation_bars,
    render_html,
    render_text,
    ticket_tables,
)

__all__ = [
    "ALIASES",
    "COLOURS",
    "EXITS",
    "FUNNELS",
    "FunnelStep",
    "PAGE",
    "RESOLVED_STAGES",
    "Report",
    "SATISFIED_SCORE",
    "SLA_COLOURS",
    "SLA_LABELS",
    "TICKET_COLUMNS",
    "TicketFigures",
    "UNASSIGNED",
    "breach_bars",
    "build_report",
    "escalation_bars",
    "render_html",
    "render_text",
    "ticket_tables",
]
