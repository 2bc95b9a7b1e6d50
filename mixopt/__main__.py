"""`python -m mixopt` runs the CLI."""

from mixopt.cli.main import main

main()
