from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .blocks import (BasicResidual, DepthwiseSeparable, GhostBlock, Interface, InvertedResidual, Keep, Skip,
                     build_candidate, candidate_label)
