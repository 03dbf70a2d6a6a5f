"""kernelprof.attribution (docstring filled in below, issue 13)."""
