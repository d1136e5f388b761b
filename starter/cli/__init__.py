"""The `crm` command: start and steer lead, course, contract, ticket and
customer journeys, manage and import staff, customers and leads, sweep RFM
tiers, report, run the dev stack.

One module per sub-app (`lead`, `course`, `contract`, `ticket`, `customer`,
`staff`, `rfm`, `importing`, `db`, `up`, `report`), the helpers they share in
`common` (settings, errors, output, parsed values) and `journey` (talking to
journeys on Temporal), assembled in `app`. Each sub-app's module is imported
only when one of its commands runs (`lazy`), and each command imports what it
needs when it runs, so `crm --help` answers without loading the sub-apps,
Temporal, SQLAlchemy or the domain models.
"""

from starter.cli.app import app

__all__ = ["app"]
