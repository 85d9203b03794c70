"""`python -m chaincity` runs the command line."""

from chaincity.cli.main import main

main()
