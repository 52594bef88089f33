"""Exit codes of every `koner` command (the one place they are defined)."""

OK = 0  # everything done
FAILED = 1  # the run finished but something fell short: failed input lines, parity below a threshold, decisive flips
USAGE = 2  # bad arguments, unusable input or a damaged model folder: nothing (or nothing more) was done
INTERRUPTED = 130  # stopped by Ctrl-C (SIGINT)
TERMINATED = 143  # stopped by SIGTERM (128 + 15, as a shell reports it)
