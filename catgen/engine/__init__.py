from .hooks import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
from .loops import GenTestLoop, GenValLoop  # noqa: F401
from .runner import CatgenRunner  # noqa: F401
from .distributed import SeparateDistributedDataParallel, setup_distributed  # noqa: F401
