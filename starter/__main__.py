"""`python -m starter ...`: the `crm` command without its console script (a venv
used without installing the project, or a container's entry point)."""

from starter.cli import app

app(prog_name="crm")
