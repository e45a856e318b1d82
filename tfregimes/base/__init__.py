"""The base every other layer builds on, with no import of any other tfregimes package: name registries, the run
directory and its atomic file writes, background file writes, the TensorBoard scalar writer, and every access to
Keras' private internals (`keras_private`)."""
