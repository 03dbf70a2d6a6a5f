"""kernelprof.methods (docstring filled in below, issue 13)."""
