"""`python -m drfm` runs the command line (also under torchrun: `torchrun ... -m drfm train ...`)."""

import sys

from drfm.cli import main

sys.exit(main())
