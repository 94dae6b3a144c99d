"""The web console: a browser front end that reaches the gRPC service through a Connect bridge.

It is a client like any other: it imports the generated contracts (`costestimator.v1`), never `server`.
"""
