"""``neurfly simulate``: replay a trace through scheduling policies in simulated time."""

from __future__ import annotations

from neurfly.cli import app
from neurfly.sim.cli import app as sim_app
from neurfly.sim.cli import simulate_command

app.command("simulate")(simulate_command)
app.add_typer(sim_app, name="sim", help="Trace tools: convert the Philly trace, generate AutoML workloads.")
