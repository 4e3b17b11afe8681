import sys

from playerpulse.cli import main

sys.exit(main())
