"""``python -m syncd.emulator ...``"""

from syncd.emulator.cli import main

raise SystemExit(main())
