"""`python -m harness` is the `notifychaos` command."""

from harness.cli import main

main()
