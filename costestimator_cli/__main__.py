"""`python -m costestimator_cli` and the `costestimator` console script."""

from costestimator_cli.app import main

if __name__ == "__main__":
    main()
