"""kernelprof.estimates.counters (docstring filled in below, issue 13)."""
