"""The driver and its Ray workers: plan the work, stream pages through the stages, quarantine poison pages."""
