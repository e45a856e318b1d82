"""What the preloaded point server imports once, so that each point forked from it starts without the ~5 s of
importing TensorFlow, Keras and the trainer (`tfregimes.sweep.launch`). Library modules only: none defines an
absl flag, so a forked `tfregimes.train` or `tfregimes.evaluate` defines exactly its own flags, as a fresh one does.
"""

import tfregimes.diagnostics.adapters  # noqa: F401
import tfregimes.evaluation  # noqa: F401
import tfregimes.training  # noqa: F401
import tfregimes.training.scoring  # noqa: F401
