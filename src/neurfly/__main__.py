"""``python -m neurfly`` runs the command line."""

from neurfly.cli import main

main()
