"""Starting and signalling journeys: Python helpers, the `crm` CLI, the dev stack."""
