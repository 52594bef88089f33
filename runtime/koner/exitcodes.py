"""Exit codes of every `koner` command (the one place they are defined)."""

OK = 0  # everything done
FAILED = 1  # the run finished but something fell short: some input lines failed, or parity is below a threshold
USAGE = 2  # bad arguments, unusable input or model: nothing (or nothing more) was done
INTERRUPTED = 130  # stopped by Ctrl-C (SIGINT)
TERMINATED = 143  # stopped by SIGTERM (128 + 15, as a shell reports it)
