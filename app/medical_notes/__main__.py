import sys

from medical_notes.cli import main

sys.exit(main())
