"""kernelprof.timeline (docstring filled in below, issue 13)."""
