"""``python -m spacon``: the command line (as ``spacon``; ``torchrun -m spacon run ...``)."""

import sys

from .cli import main

sys.exit(main())
