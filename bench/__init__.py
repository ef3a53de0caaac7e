"""gridcoop benchmarks (``make bench``)."""
