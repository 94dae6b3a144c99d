"""The cost estimator gRPC service: benefits, eligibility and member cost estimates."""
