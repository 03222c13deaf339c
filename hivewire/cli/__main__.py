"""`python -m hivewire.cli`: the `hivewire` command."""

from hivewire.cli import main

main()
