"""Side effects: CRM store reads and writes, message rendering and delivery.

The Temporal activity classes are one module per journey (`leads`, `tickets`,
`payments`, `lifecycle`, `courses`, `messaging`), each with its store reads and
writes in a `*_records` module beside it; the store layer they share with the
CLI and the demo is `activities.store`."""
