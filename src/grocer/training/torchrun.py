"""`python -m grocer.training.torchrun ARGS`: torchrun ARGS, tied to the grocer process that starts it.

grocer.training.distributed.launch runs this instead of torch.distributed.run: the agent
dies with its parent, and hands its own pid to the workers it starts, which die with it
(distributed.join).
"""

import os

from torch.distributed.run import main

from grocer.interrupt import PARENT_PID, die_with_parent

if __name__ == "__main__":
    die_with_parent()
    os.environ[PARENT_PID] = str(os.getpid())  # what the workers check in their die_with_parent()
    main()
