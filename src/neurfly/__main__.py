"""``python -m neurfly`` runs the command line."""

from neurfly.cli import main

if __name__ == "__main__":
    main()
