"""``python -m lstmtag`` runs the command line."""

from lstmtag.cli import app

app()
