"""The gRPC edge: servicers, pb <-> domain conversion, validation, auth, and the one error-to-status map."""
