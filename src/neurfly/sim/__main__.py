"""Run the simulator's command line: ``python -m neurfly.sim simulate --trace ... --cluster ...``."""

from neurfly.sim.cli import main

main()
