import sys

from vidiff.cli import main

sys.exit(main())
