"""The command-line front ends (`python -m tfregimes.<name>`) and the only code that reads absl FLAGS: each turns
flags into the explicit arguments of the library below it. `common` holds what they share."""
