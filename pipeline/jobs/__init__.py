"""Nightly jobs: jobs/NAME.toml files holding a run's settings."""
