"""kernelprof.gpu (docstring filled in below, issue 13)."""
