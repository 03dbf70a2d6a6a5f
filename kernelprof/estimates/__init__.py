"""kernelprof.estimates (docstring filled in below, issue 13)."""
