"""Exit codes shared by the ``hptune`` script's entry and its commands (imports nothing)."""

#: A run or command stopped by Ctrl-C (128 + SIGINT).
INTERRUPTED = 130
