"""The bench of issue 13 (`python -m bench`, `./dev bench`): figures with same-run baselines and verdicts."""

import os

# gRPC core's informational lines (GOAWAY on shutdown, ...) would drown the progress lines.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
