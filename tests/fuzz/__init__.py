"""Descriptor-driven fuzzing of every RPC over a real socket (issue 9 §4). `python -m tests.fuzz [N]`."""
