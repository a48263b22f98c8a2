from .backbones import *  # noqa: F401,F403
from .candidates import (BasicResidual, DepthwiseSeparable, GhostBlock, Interface, InvertedResidual, Keep,  # noqa: F401
                         Skip, build_candidate, candidate_label)
from .heads import *  # noqa: F401,F403
