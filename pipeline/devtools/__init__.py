"""Tools for tests, demos and benchmarks: the tiny random-weight VLM, sample invoices, the eval set, a
loopback llama.cpp server."""
