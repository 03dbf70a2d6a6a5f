"""kernelprof.outputs (docstring filled in below, issue 13)."""
