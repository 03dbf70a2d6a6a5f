import sys

from kernelprof.cli.main import main

sys.exit(main())
