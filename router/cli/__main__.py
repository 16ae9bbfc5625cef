"""`python -m router.cli`: the same commands as the `router` script."""
from router.cli import main

main()
