import pathlib
import sys

# The benchmark modules import their shared instance builders as `cases`.
sys.path.insert(0, str(pathlib.Path(__file__).parent))
