"""Side effects: CRM store reads and writes, message rendering and delivery.

The Temporal activity classes are one module per journey (`leads`, `tickets`,
`payments`, `lifecycle`, `courses`, `messaging`); all but `courses` keep their
store reads and writes in a `*_records` module beside them (`lead_records`,
`message_records`, ...). The store layer they share with the CLI and the demo
is `activities.store`; the RFM sweep is `rfm`, its statements `rfm_sql`."""
