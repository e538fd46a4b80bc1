"""`python -m pgface`: the `pgface` command."""

from pgface.launch import main

main()
