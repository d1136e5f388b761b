"""Side effects: CRM store reads and writes, message rendering and delivery."""
