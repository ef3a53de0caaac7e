"""``python -m gridcoop.cli`` runs the ``gridcoop`` command."""

from gridcoop.cli import main

if __name__ == "__main__":
    main(prog_name="gridcoop")
