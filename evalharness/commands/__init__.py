"""One module per CLI command, each with ``register(subparsers)``.

Adding a command is one module and one entry in ``COMMANDS``; handlers import heavy
libraries lazily so ``--help`` stays fast.
"""

COMMANDS = ["tasks", "run", "rescore", "score", "compare", "gate", "bless", "noise", "leaderboard", "report", "demo", "sweep", "publish", "import_runs", "parity"]
