from .data_preprocessors import *  # noqa: F401,F403
from .discriminators import *  # noqa: F401,F403
from .encoders import *  # noqa: F401,F403
from .generators import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .synthesizers import *  # noqa: F401,F403
