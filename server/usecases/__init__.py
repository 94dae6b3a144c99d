"""Orchestration with I/O: what each RPC does, between the gRPC edge and the domain, clients and store."""
