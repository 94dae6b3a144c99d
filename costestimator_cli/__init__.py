"""`costestimator`: a terminal client of the costestimator.v1 services (issue 12).

It talks to the service through the contracts like any other caller: the stubs come from `costestimator.v1`,
which is the costestimator-client package when installed, or the repo's generated/ tree (same import path).
"""
