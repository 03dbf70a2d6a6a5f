"""kernelprof.sampling (docstring filled in below, issue 13)."""
