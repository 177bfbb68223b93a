"""`python -m wastebank.cli`, as the demo and the tests start the processes."""

from wastebank.cli import app

app()
